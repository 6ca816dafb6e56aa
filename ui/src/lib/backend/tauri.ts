// The Backend over Tauri's IPC: each method is one Rust command; events come from src-tauri/src/events.rs.
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type {
  ActiveEntry,
  CacheScan,
  CleanReport,
  CompatReport,
  DeleteReport,
  DownloadPreview,
  DownloadProgress,
  DownloadRequest,
  ErrorPayload,
  HardwareInfo,
  ImportOutcome,
  ImportProgress,
  LibraryModel,
  LibraryQuery,
  LoadedModel,
  MoveReport,
  Statistics,
  GetProgress,
  RuntimeBuild,
  RuntimeRemoved,
  Runtimes,
  LoadSettings,
  MachineEntry,
  MachineList,
  ModelDetails,
  ModelFit,
  ModelLifecycle,
  ModelType,
  OllamaStatus,
  OperationName,
  RepoDetails,
  RuntimeChange,
  SearchPage,
  SearchQuery,
  SettingsPatch,
  SettingsView,
  Started,
  StarterCatalog,
  StorageReport,
  VerifyProgress,
  VerifyReport,
} from '../bindings';
import { BackendError, type Backend } from './index';

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (err) {
    throw BackendError.from(err);
  }
}

/** An operation of the core's table, on the machine the window drives (src-tauri/src/commands/operations.rs). */
function run<T>(name: OperationName, args: Record<string, unknown> = {}): Promise<T> {
  return call<T>('operation', { name, args });
}

export const tauriBackend: Backend = {
  listModels: () => call<CacheScan>('list_models'),
  previewDownload: (request: DownloadRequest) => run<DownloadPreview>('preview', { request }),
  startDownload: (request: DownloadRequest) => run<Started>('start', { request }).then((s) => s.id),
  pauseDownload: (id: number) => run<DownloadProgress>('pause', { id }).then(() => undefined),
  resumeDownload: (id: number) => run<DownloadProgress>('resume', { id }).then(() => undefined),
  cancelDownload: (id: number) => run<DownloadProgress>('cancel', { id }).then(() => undefined),
  listDownloads: () => run<DownloadProgress[]>('downloads'),
  onDownloadProgress: (handler) => listen<DownloadProgress>('download-progress', (e) => handler(e.payload)),
  onModelLifecycle: (handler) => listen<ModelLifecycle>('model-lifecycle', (e) => handler(e.payload)),
  listLibrary: (query: LibraryQuery) => run<LibraryModel[]>('models', { query }),
  modelDetails: (id: string) => run<ModelDetails>('model', { id }),
  deleteModel: (id: string, revision: string | null, dryRun: boolean) =>
    run<DeleteReport>('delete', { id, options: { revision, dryRun } }),
  verifyModel: (id: string, repair: boolean) => run<VerifyReport>('verify', { id, options: { revision: null, repair } }),
  onVerifyProgress: (handler) => listen<VerifyProgress>('verify-progress', (e) => handler(e.payload)),
  setModelType: (id: string, modelType: ModelType | null) => run<void>('set_type', { id, change: { modelType } }),
  openFolder: (path: string) => call<void>('open_folder', { path }),
  storageReport: () => run<StorageReport>('storage'),
  statistics: () => run<Statistics>('stats'),
  cleanStorage: () => run<CleanReport>('clean'),
  getSettings: () => call<SettingsView>('get_settings'),
  updateSettings: (patch: SettingsPatch) => call<SettingsView>('update_settings', { patch }),
  // A type given goes in the path, where every version of `mm serve` reads it.
  activateModel: (id: string, modelType: ModelType | null) =>
    modelType
      ? run<ActiveEntry>('activate_as', { modelType, ask: { id, revision: null, modelType: null } })
      : run<ActiveEntry>('activate', { ask: { id, revision: null, modelType: null } }),
  deactivateType: (modelType: ModelType) => run<void>('deactivate', { modelType }),
  activeModels: () => run<Partial<Record<ModelType, ActiveEntry>>>('active'),
  loadModel: (target: string | null, context: number | null) => run<LoadedModel>('load', { ask: { target, context } }),
  unloadModel: (target: string | null) => run<LoadedModel[]>('unload', { ask: { target } }),
  pinModel: (id: string, pinned: boolean) => run<void>('pin', { id, ask: { pinned } }),
  loadedModels: () => run<LoadedModel[]>('loaded'),
  onRuntimeChanged: (handler) => listen<RuntimeChange>('runtime-changed', (e) => handler(e.payload)),
  systemInfo: () => run<HardwareInfo>('system'),
  checkCompatibility: (target: string, revision: string | null, loadSettings?: LoadSettings | null) =>
    run<CompatReport>('compat', { ask: { target, revision, context: null, loadSettings: loadSettings ?? null } }),
  runtimes: () => run<Runtimes>('runtimes'),
  getRuntime: (release: string | null, backend: string | null) => run<RuntimeBuild>('get_runtime', { ask: { release, backend } }),
  onRuntimeProgress: (handler) => listen<GetProgress>('runtime-progress', (e) => handler(e.payload)),
  useRuntime: (name: string) => run<Runtimes>('use_runtime', { ask: { name } }),
  rollbackRuntime: () => run<Runtimes>('rollback_runtime'),
  removeRuntime: (name: string) => run<RuntimeRemoved>('remove_runtime', { name }),
  moveModel: (id: string, folder: string) => run<MoveReport>('move_model', { id, to: { folder } }),
  pinForStorage: (id: string, pinned: boolean) => run<void>('pin_model', { id, ask: { pinned } }),
  linkAdapter: (id: string, base: string | null) => run<LibraryModel>('link_adapter', { id, link: { base } }),
  loadSettings: (id: string) => run<LoadSettings>('load_settings', { id }),
  keepLoadSettings: (id: string, settings: LoadSettings) => run<LoadSettings>('set_load_settings', { id, settings }),
  libraryFit: () => run<Record<string, ModelFit>>('fit'),
  searchModels: (query: SearchQuery, next: string | null) => run<SearchPage>('search', { ask: { query, next } }),
  repoDetails: (repo: string, revision: string | null) => run<RepoDetails>('repo', { repo, at: { revision } }),
  starterCatalog: () => run<StarterCatalog>('catalog'),
  openUrl: (url: string) => call<void>('open_url', { url }),
  importPaths: (paths: string[]) => call<ImportOutcome[]>('import_paths', { paths }),
  cancelImports: () => call<void>('cancel_imports'),
  onDropHover: (handler) => listen<boolean>('drop-hover', (e) => handler(e.payload)),
  onImportProgress: (handler) => listen<ImportProgress>('import-progress', (e) => handler(e.payload)),
  onImportFinished: (handler) => listen<ImportOutcome[]>('import-finished', (e) => handler(e.payload)),
  onLibraryChanged: (handler) => listen('library-changed', () => handler()),
  ollamaStatus: () => run<OllamaStatus>('ollama'),
  ollamaPull: (name: string) => run<Started>('ollama_pull', { pull: { name } }).then((s) => s.id),
  windowReady: () => call<void>('window_ready'),
  logFolder: () => call<string>('log_folder'),
  localServer: () => call<string | null>('local_server'),
  openLogFolder: () => call<void>('open_log_folder'),
  copyDiagnostics: () => call<string>('copy_diagnostics'),
  onSettingsChanged: (handler) => listen('settings-changed', () => handler()),
  onAppError: (handler) => listen<ErrorPayload>('app-error', (e) => handler(e.payload)),
  listMachines: () => call<MachineList>('list_machines'),
  addMachine: (name: string, url: string, token: string | null) => call<MachineEntry>('add_machine', { name, url, token }),
  removeMachine: (url: string) => call<void>('remove_machine', { url }),
  selectMachine: (url: string | null) => call<void>('select_machine', { url }),
  onMachineChanged: (handler) => listen<string | null>('machine-changed', (e) => handler(e.payload)),
};
