// The Backend over Tauri's IPC: each method is one Rust command; events come from src-tauri/src/events.rs.
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type {
  ActiveEntry,
  CacheScan,
  CompatReport,
  HardwareInfo,
  ModelFit,
  ImportOutcome,
  ImportProgress,
  OllamaStatus,
  RepoDetails,
  SearchPage,
  SearchQuery,
  StarterCatalog,
  ErrorPayload,
  CleanReport,
  DeleteReport,
  DownloadPreview,
  DownloadProgress,
  DownloadRequest,
  LibraryModel,
  LibraryQuery,
  ModelDetails,
  ModelLifecycle,
  ModelType,
  SettingsPatch,
  SettingsView,
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

export const tauriBackend: Backend = {
  listModels: () => call<CacheScan>('list_models'),
  previewDownload: (request: DownloadRequest) => call<DownloadPreview>('preview_download', { request }),
  startDownload: (request: DownloadRequest) => call<number>('start_download', { request }),
  pauseDownload: (id: number) => call<void>('pause_download', { id }),
  resumeDownload: (id: number) => call<void>('resume_download', { id }),
  cancelDownload: (id: number) => call<void>('cancel_download', { id }),
  listDownloads: () => call<DownloadProgress[]>('list_downloads'),
  onDownloadProgress: (handler) => listen<DownloadProgress>('download-progress', (e) => handler(e.payload)),
  onModelLifecycle: (handler) => listen<ModelLifecycle>('model-lifecycle', (e) => handler(e.payload)),
  listLibrary: (query: LibraryQuery) => call<LibraryModel[]>('list_library', { query }),
  modelDetails: (id: string) => call<ModelDetails>('model_details', { id }),
  deleteModel: (id: string, revision: string | null, dryRun: boolean) =>
    call<DeleteReport>('delete_model', { id, revision, dryRun }),
  verifyModel: (id: string, repair: boolean) => call<VerifyReport>('verify_model', { id, repair }),
  onVerifyProgress: (handler) => listen<VerifyProgress>('verify-progress', (e) => handler(e.payload)),
  setModelType: (id: string, modelType: ModelType | null) => call<void>('set_model_type', { id, modelType }),
  openFolder: (path: string) => call<void>('open_folder', { path }),
  storageReport: () => call<StorageReport>('storage_report'),
  cleanStorage: () => call<CleanReport>('clean_storage'),
  getSettings: () => call<SettingsView>('get_settings'),
  updateSettings: (patch: SettingsPatch) => call<SettingsView>('update_settings', { patch }),
  activateModel: (id: string, modelType: ModelType | null) => call<ActiveEntry>('activate_model', { id, modelType }),
  deactivateType: (modelType: ModelType) => call<void>('deactivate_type', { modelType }),
  activeModels: () => call<Partial<Record<ModelType, ActiveEntry>>>('active_models'),
  systemInfo: () => call<HardwareInfo>('system_info'),
  checkCompatibility: (target: string, revision: string | null) => call<CompatReport>('check_compatibility', { target, revision }),
  libraryFit: () => call<Record<string, ModelFit>>('library_fit'),
  searchModels: (query: SearchQuery, next: string | null) => call<SearchPage>('search_models', { query, next }),
  repoDetails: (repo: string, revision: string | null) => call<RepoDetails>('repo_details', { repo, revision }),
  starterCatalog: () => call<StarterCatalog>('starter_catalog'),
  openUrl: (url: string) => call<void>('open_url', { url }),
  importPaths: (paths: string[]) => call<ImportOutcome[]>('import_paths', { paths }),
  cancelImports: () => call<void>('cancel_imports'),
  onDropHover: (handler) => listen<boolean>('drop-hover', (e) => handler(e.payload)),
  onImportProgress: (handler) => listen<ImportProgress>('import-progress', (e) => handler(e.payload)),
  onImportFinished: (handler) => listen<ImportOutcome[]>('import-finished', (e) => handler(e.payload)),
  onLibraryChanged: (handler) => listen('library-changed', () => handler()),
  ollamaStatus: () => call<OllamaStatus>('ollama_status'),
  ollamaPull: (name: string) => call<number>('ollama_pull', { name }),
  windowReady: () => call<void>('window_ready'),
  logFolder: () => call<string>('log_folder'),
  openLogFolder: () => call<void>('open_log_folder'),
  copyDiagnostics: () => call<string>('copy_diagnostics'),
  onSettingsChanged: (handler) => listen('settings-changed', () => handler()),
  onAppError: (handler) => listen<ErrorPayload>('app-error', (e) => handler(e.payload)),
};
