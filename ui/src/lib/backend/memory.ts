// A Backend held in memory, for unit tests and for running the UI in a plain browser. Tests drive events by
// calling emitProgress / emitLifecycle as the Rust side would, and read what was asked in `actions`.
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
  RepoDetails,
  RuntimeChange,
  SearchHit,
  SearchPage,
  SearchQuery,
  SettingsPatch,
  SettingsView,
  StarterCatalog,
  StorageReport,
  VerifyProgress,
  VerifyReport,
} from '../bindings';
import { emptyLoadSettings } from '../loadSettingsText';
import { BackendError, type Backend, type Unsubscribe } from './index';

export interface MemoryBackendOptions {
  scan?: CacheScan;
  models?: LibraryModel[];
  details?: ModelDetails;
  preview?: DownloadPreview;
  verify?: VerifyReport;
  storage?: StorageReport;
  settings?: SettingsView;
  /** When set, every call fails with this error. */
  error?: ErrorPayload;
  /** When set, only updateSettings fails with this error. */
  settingsError?: ErrorPayload;
  active?: Partial<Record<ModelType, ActiveEntry>>;
  hardware?: HardwareInfo;
  compat?: CompatReport;
  fit?: Record<string, ModelFit>;
  /** When set, activateModel fails with this error. */
  activateError?: ErrorPayload;
  /** What the hub's search finds: filtered by text, task and library, paged by the query's limit. */
  hits?: SearchHit[];
  /** When set, searchModels fails with this error. */
  searchError?: ErrorPayload;
  /** Repo details by id. */
  repos?: Record<string, RepoDetails>;
  catalog?: StarterCatalog;
  /** What importPaths answers, per path (default: imported as local/{file name}). */
  importOutcome?: (path: string) => ImportOutcome;
  ollama?: OllamaStatus;
  /** Machines that answer addMachine, by address (anything else is unreachable). */
  reachable?: string[];
  /** The loaded models. */
  loaded?: LoadedModel[];
  /** When set, loadModel fails with this error. */
  loadError?: ErrorPayload;
  /** The llama.cpp builds; `getRuntime` adds `gettable` (the build a release offers), or fails with `runtimeError`. */
  runtimes?: Runtimes;
  gettable?: RuntimeBuild;
  runtimeError?: ErrorPayload;
  /** Load settings kept, by model id. */
  loadSettings?: Record<string, LoadSettings>;
}

/** A loaded model as the runtime host reports it, for tests. */
export const loadedModel = (id: string, modelType: ModelType, over: Partial<LoadedModel> = {}): LoadedModel => ({
  modelType, id, runtime: 'llama-server', state: 'ready', endpoint: 'http://127.0.0.1:8770/v1', pid: 4242,
  command: `llama-server --model /models/${id}.gguf --ctx-size 4096`,
  plan: { context: 4096, gpuLayers: 0, layers: 16, estimateBytes: 1_300_000_000, reason: 'on the CPU', pooling: null, load: emptyLoadSettings() },
  estimateBytes: 1_300_000_000, measured: { ram: 1_100_000_000, gpu: null }, needBytes: 1_274_000_000, requests: 3,
  busy: 0, pinned: false, expiresAt: null, restarts: 0,
  loadedAt: 1_700_000_000, lastUsed: 1_700_000_100, owner: 'app', error: null, ...over,
});

export const emptyScan = (cacheDir = '/home/user/.cache/huggingface/hub'): CacheScan => ({
  cacheDir,
  exists: true,
  repos: [],
  problems: [],
  sizeOnDisk: 0,
});

export const defaultSettings = (): SettingsView => ({
  cacheDir: null,
  libraryFolders: [],
  endpoint: null,
  proxy: null,
  tokenHint: null,
  maxConcurrentDownloads: 3,
  bandwidthLimit: null,
  connectionsPerFile: 16,
  useXet: true,
  verifyOnDownload: true,
  keepInTray: true,
  notifyDownloads: true,
  copyImports: false,
  machines: [],
  llamaServer: null,
  llamaCppReleases: null,
  storageLimit: null,
  minFreeSpace: null,
  maxContext: 8192,
  idleUnloadSeconds: 0,
  maxLoaded: 4,
  memoryReserve: 1 << 30,
  memoryLimit: null,
  restartAttempts: 3,
  localServer: false,
  localServerPort: 8765,
  serveRequireToken: false,
  warning: null,
});

export class MemoryBackend implements Backend {
  calls = 0;
  started: DownloadRequest[] = [];
  actions: string[] = [];
  queries: LibraryQuery[] = [];
  private progressHandlers = new Set<(p: DownloadProgress) => void>();
  private lifecycleHandlers = new Set<(e: ModelLifecycle) => void>();
  private verifyHandlers = new Set<(p: VerifyProgress) => void>();

  constructor(public options: MemoryBackendOptions = {}) {}

  private check() {
    this.calls += 1;
    if (this.options.error) throw new BackendError(this.options.error);
  }

  private need<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new BackendError({ code: 'not-found', message: `${what} was not found` });
    return structuredClone(value);
  }

  async listModels(): Promise<CacheScan> {
    this.check();
    return structuredClone(this.options.scan ?? emptyScan());
  }

  async previewDownload(request: DownloadRequest): Promise<DownloadPreview> {
    this.check();
    return this.need(this.options.preview, request.repo);
  }

  async startDownload(request: DownloadRequest): Promise<number> {
    this.check();
    this.started.push(request);
    return this.started.length;
  }

  async pauseDownload(id: number) {
    this.actions.push(`pause ${id}`);
  }

  async resumeDownload(id: number) {
    this.actions.push(`resume ${id}`);
  }

  async cancelDownload(id: number) {
    this.actions.push(`cancel ${id}`);
  }

  async listDownloads(): Promise<DownloadProgress[]> {
    return [];
  }

  async onDownloadProgress(handler: (p: DownloadProgress) => void): Promise<Unsubscribe> {
    this.progressHandlers.add(handler);
    return () => this.progressHandlers.delete(handler);
  }

  async onModelLifecycle(handler: (e: ModelLifecycle) => void): Promise<Unsubscribe> {
    this.lifecycleHandlers.add(handler);
    return () => this.lifecycleHandlers.delete(handler);
  }

  async listLibrary(query: LibraryQuery): Promise<LibraryModel[]> {
    this.check();
    this.queries.push(structuredClone(query));
    const text = query.text?.toLowerCase() ?? '';
    return structuredClone(this.options.models ?? []).filter(
      (m) => (!query.modelType || m.modelType === query.modelType) && (!text || m.id.toLowerCase().includes(text)),
    );
  }

  async modelDetails(id: string): Promise<ModelDetails> {
    this.check();
    return this.need(this.options.details, id);
  }

  async deleteModel(id: string, revision: string | null, dryRun: boolean): Promise<DeleteReport> {
    this.check();
    this.actions.push(`${dryRun ? 'dry-delete' : 'delete'} ${id}${revision ? `@${revision}` : ''}`);
    const size = this.options.models?.find((m) => m.id === id)?.size ?? 0;
    const adapters = this.options.models?.find((m) => m.id === id)?.adapters ?? [];
    if (!dryRun) this.options.models = this.options.models?.filter((m) => m.id !== id);
    return { id, revision, commit: null, bytesBefore: size, bytesAfter: 0, bytesFreed: size, blobsRemoved: 1, wholeModel: true, dryRun, adapters };
  }

  async verifyModel(id: string, repair: boolean): Promise<VerifyReport> {
    this.check();
    this.actions.push(`verify ${id}${repair ? ' repair' : ''}`);
    return this.need(this.options.verify, id);
  }

  async onVerifyProgress(handler: (p: VerifyProgress) => void): Promise<Unsubscribe> {
    this.verifyHandlers.add(handler);
    return () => this.verifyHandlers.delete(handler);
  }

  async setModelType(id: string, modelType: ModelType | null): Promise<void> {
    this.check();
    this.actions.push(`type ${id} ${modelType ?? 'auto'}`);
  }

  async openFolder(path: string): Promise<void> {
    this.actions.push(`open ${path}`);
  }

  /** Figures from the models and loaded models it holds. */
  async statistics(): Promise<Statistics> {
    this.check();
    const count = (key: (m: LibraryModel) => string) =>
      (this.options.models ?? []).reduce<Record<string, number>>((acc, m) => ({ ...acc, [key(m)]: (acc[key(m)] ?? 0) + 1 }), {});
    const loaded = this.options.loaded ?? [];
    return {
      models: this.options.models?.length ?? 0,
      byType: count((m) => m.modelType),
      byStatus: count((m) => m.status),
      bySource: count((m) => m.source),
      folders: [
        { path: this.options.storage?.cacheDir ?? '/cache', bytes: this.options.storage?.cacheBytes ?? 0, kind: 'cache' },
        ...(this.options.settings?.libraryFolders ?? []).map((path) => ({ path, bytes: 0, kind: 'library-folder' })),
      ],
      downloadsRunning: 0,
      downloadsQueued: 0,
      modelsLoaded: loaded.length,
      requests: Object.fromEntries(loaded.map((m) => [m.id, m.requests])),
      mirrorHits: 0,
    };
  }

  async storageReport(): Promise<StorageReport> {
    this.check();
    return this.need(this.options.storage, 'storage');
  }

  async cleanStorage(): Promise<CleanReport> {
    this.check();
    this.actions.push('clean');
    const freed = this.options.storage?.reclaimableBytes ?? 0;
    if (this.options.storage) this.options.storage = { ...this.options.storage, orphanBlobs: [], partialDownloads: [], detachedRevisions: [], reclaimableBytes: 0 };
    return { filesRemoved: 1, bytesFreed: freed, revisionsRemoved: 0 };
  }

  async getSettings(): Promise<SettingsView> {
    this.check();
    return structuredClone(this.options.settings ?? defaultSettings());
  }

  async updateSettings(patch: SettingsPatch): Promise<SettingsView> {
    this.check();
    if (this.options.settingsError) throw new BackendError(this.options.settingsError);
    this.actions.push(`settings ${JSON.stringify(patch)}`);
    const current = this.options.settings ?? defaultSettings();
    const next: SettingsView = { ...current, warning: null };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null || value === undefined) continue;
      if (key === 'token') next.tokenHint = value ? `${String(value).slice(0, 3)}…${String(value).slice(-4)}` : null;
      else (next as Record<string, unknown>)[key] = value;
    }
    this.options.settings = next;
    return structuredClone(next);
  }

  async activateModel(id: string, modelType: ModelType | null): Promise<ActiveEntry> {
    this.check();
    if (this.options.activateError) throw new BackendError(this.options.activateError);
    this.actions.push(`activate ${id}${modelType ? ` as ${modelType}` : ''}`);
    const m = this.options.models?.find((x) => x.id === id);
    const type = modelType ?? m?.modelType ?? 'other';
    const entry: ActiveEntry = {
      modelType: type, id, revision: m?.commit ?? '', path: `${m?.path ?? ''}/snapshots/${m?.commit ?? ''}`,
      link: `/data/active/${type}`, format: m?.format ?? 'other', primaryFile: null, activatedAt: 1_700_000_000,
      endpoint: null,
    };
    this.options.active = { ...this.options.active, [type]: entry };
    this.options.models = this.options.models?.map((x) =>
      x.id === id ? { ...x, status: 'active' } : x.status === 'active' && x.modelType === type ? { ...x, status: 'available' } : x,
    );
    return entry;
  }

  async deactivateType(modelType: ModelType): Promise<void> {
    this.check();
    this.actions.push(`deactivate ${modelType}`);
    const id = this.options.active?.[modelType]?.id;
    if (this.options.active) delete this.options.active[modelType];
    this.options.models = this.options.models?.map((x) => (x.id === id ? { ...x, status: 'available' } : x));
  }

  async activeModels(): Promise<Partial<Record<ModelType, ActiveEntry>>> {
    this.check();
    return structuredClone(this.options.active ?? {});
  }

  async loadModel(target: string | null, context: number | null): Promise<LoadedModel> {
    this.check();
    this.actions.push(`load ${target ?? 'text-generation'}${context ? ` --context ${context}` : ''}`);
    if (this.options.loadError) throw new BackendError(this.options.loadError);
    const type = (target && this.options.active?.[target as ModelType] ? target : 'text-generation') as ModelType;
    const id = this.options.active?.[type]?.id;
    if (!id) throw new BackendError({ code: 'not-found', message: `no ${type} model is active` });
    const loaded = loadedModel(id, type);
    this.options.loaded = [...(this.options.loaded ?? []).filter((m) => m.modelType !== type), loaded];
    this.runtimeHandlers.forEach((h) => h({ id, loaded }));
    return structuredClone(loaded);
  }

  async unloadModel(target: string | null): Promise<LoadedModel[]> {
    this.check();
    this.actions.push(`unload ${target ?? 'all'}`);
    const gone = (this.options.loaded ?? []).filter((m) => target === null || m.modelType === target || m.id === target);
    this.options.loaded = (this.options.loaded ?? []).filter((m) => !gone.includes(m));
    gone.forEach((m) => this.runtimeHandlers.forEach((h) => h({ id: m.id, loaded: null })));
    return structuredClone(gone);
  }

  async pinModel(id: string, pinned: boolean): Promise<void> {
    this.check();
    this.actions.push(`${pinned ? 'pin' : 'unpin'} ${id}`);
    this.options.loaded = (this.options.loaded ?? []).map((m) => (m.id === id ? { ...m, pinned } : m));
  }

  async loadedModels(): Promise<LoadedModel[]> {
    this.check();
    return structuredClone(this.options.loaded ?? []);
  }

  private runtimeHandlers = new Set<(change: RuntimeChange) => void>();

  async onRuntimeChanged(handler: (change: RuntimeChange) => void): Promise<Unsubscribe> {
    this.runtimeHandlers.add(handler);
    return () => this.runtimeHandlers.delete(handler);
  }

  /** A change the runtime host reports (a crash, memory measured), as the Rust side would send it. */
  emitRuntimeChanged(change: RuntimeChange) {
    this.runtimeHandlers.forEach((h) => h(change));
  }

  async systemInfo(): Promise<HardwareInfo> {
    this.check();
    return this.need(this.options.hardware, 'hardware');
  }

  /** The compat report; with load settings, its KV cache sized for their type and context as the core does. */
  async checkCompatibility(target: string, _revision: string | null = null, load: LoadSettings | null = null): Promise<CompatReport> {
    this.check();
    const report = structuredClone(this.need(this.options.compat, target));
    if (!load) return report;
    const per32 = { f16: 64, q8_0: 34, q4_0: 18 }[load.kvCacheType ?? 'f16'];
    for (const e of report.entries) {
      const r = e.requirements;
      const context = load.context ?? r.context;
      r.kvCacheBytes = Math.floor((((r.kvCacheBytes / r.context) * context) / 64) * per32);
      r.context = context;
      r.kvCacheType = load.kvCacheType ?? 'f16';
      r.totalBytes = r.weightsBytes + r.kvCacheBytes + r.computeBytes;
    }
    return report;
  }

  private runtimeProgress = new Set<(p: GetProgress) => void>();

  private machineRuntimes(): Runtimes {
    return (this.options.runtimes ??= { builds: [], default: null, previous: null, releases: 'https://api.github.com/repos/ggml-org/llama.cpp/releases' });
  }

  async runtimes(): Promise<Runtimes> {
    this.check();
    return structuredClone(this.machineRuntimes());
  }

  /** Reports a download, an unpack and a try, then adds the build and makes it the default. */
  async getRuntime(): Promise<RuntimeBuild> {
    this.check();
    this.actions.push('get runtime');
    const build = this.need(this.options.gettable, 'a release');
    for (const stage of ['download', 'unpack', 'try']) {
      this.runtimeProgress.forEach((h) => h({ stage, bytes: stage === 'download' ? 5_000_000 : 0, total: 10_000_000 }));
      await new Promise((r) => setTimeout(r, 0));
    }
    if (this.options.runtimeError) throw new BackendError(this.options.runtimeError);
    const r = this.machineRuntimes();
    r.builds = [build, ...r.builds.filter((b) => b.path !== build.path)];
    r.previous = r.default ?? 'path';
    r.default = build.path;
    return structuredClone(build);
  }

  async onRuntimeProgress(handler: (p: GetProgress) => void): Promise<Unsubscribe> {
    this.runtimeProgress.add(handler);
    return () => this.runtimeProgress.delete(handler);
  }

  async useRuntime(name: string): Promise<Runtimes> {
    this.check();
    this.actions.push(`use runtime ${name}`);
    const r = this.machineRuntimes();
    const build = r.builds.find((b) => b.name === name);
    if (!build) throw new BackendError({ code: 'not-found', message: `no llama.cpp build is named "${name}" here` });
    r.previous = r.default;
    r.default = build.path;
    return structuredClone(r);
  }

  async rollbackRuntime(): Promise<Runtimes> {
    this.check();
    this.actions.push('rollback runtime');
    const r = this.machineRuntimes();
    const back = r.builds.find((b) => b.path === r.previous) ?? null;
    r.previous = r.default;
    r.default = back?.path ?? null;
    return structuredClone(r);
  }

  async removeRuntime(name: string): Promise<RuntimeRemoved> {
    this.check();
    this.actions.push(`remove runtime ${name}`);
    const r = this.machineRuntimes();
    r.builds = r.builds.filter((b) => b.name !== name);
    return { name, bytesFreed: 10_000_000 };
  }

  async moveModel(id: string, folder: string): Promise<MoveReport> {
    this.check();
    this.actions.push(`move ${id} ${folder}`);
    const m = this.options.models?.find((x) => x.id === id);
    if (m) {
      m.path = `${folder}/models--${id.replace('/', '--')}`;
      m.source = m.source === 'folder' ? 'hugging-face' : 'folder';
    }
    return { id, from: '', to: folder, blobsCopied: 1, bytesCopied: m?.size ?? 0 };
  }

  async pinForStorage(id: string, pinned: boolean): Promise<void> {
    this.check();
    this.actions.push(`${pinned ? 'storage-pin' : 'storage-unpin'} ${id}`);
    for (const m of this.options.models ?? []) if (m.id === id) m.pinned = pinned;
    if (this.options.details?.model.id === id) this.options.details.model.pinned = pinned;
  }

  /** Links an adapter as the core would (no fit check here): its base, linked by the user, or back to none. */
  async linkAdapter(id: string, base: string | null): Promise<LibraryModel> {
    this.check();
    this.actions.push(`link ${id} ${base ?? 'auto'}`);
    const models = this.options.models ?? [];
    const adapter = models.find((m) => m.id === id);
    if (!adapter?.adapter) throw new BackendError({ code: 'invalid-input', message: `${id} is not an adapter` });
    for (const m of models) m.adapters = m.adapters.filter((a) => a !== id);
    adapter.adapter = { ...adapter.adapter, base, linkedBy: base ? 'user' : null, problem: base ? null : adapter.adapter.problem };
    if (base) models.find((m) => m.id === base)?.adapters.push(id);
    if (this.options.details?.model.id === id) this.options.details.model = structuredClone(adapter);
    return structuredClone(adapter);
  }

  async loadSettings(id: string): Promise<LoadSettings> {
    this.check();
    return structuredClone(this.options.loadSettings?.[id] ?? emptyLoadSettings());
  }

  async keepLoadSettings(id: string, settings: LoadSettings): Promise<LoadSettings> {
    this.check();
    this.actions.push(`load settings ${id}`);
    this.options.loadSettings = { ...this.options.loadSettings, [id]: structuredClone(settings) };
    return structuredClone(settings);
  }

  searches: Array<{ query: SearchQuery; next: string | null }> = [];
  opened: string[] = [];

  async searchModels(query: SearchQuery, next: string | null): Promise<SearchPage> {
    this.check();
    this.searches.push({ query: structuredClone(query), next });
    if (this.options.searchError) throw new BackendError(this.options.searchError);
    const text = query.text.trim().toLowerCase();
    const found = (this.options.hits ?? []).filter(
      (h) =>
        h.id.toLowerCase().includes(text) &&
        (!query.task || h.task === query.task) &&
        (!query.library || h.library === query.library),
    );
    const start = next ? Number(next) : 0;
    const limit = query.limit ?? 30;
    const end = start + limit;
    return { models: structuredClone(found.slice(start, end)), next: end < found.length ? String(end) : null };
  }

  async repoDetails(repo: string): Promise<RepoDetails> {
    this.check();
    return this.need(this.options.repos?.[repo], repo);
  }

  async starterCatalog(): Promise<StarterCatalog> {
    this.check();
    return structuredClone(this.options.catalog ?? { entries: [], offline: false });
  }

  async openUrl(url: string): Promise<void> {
    this.opened.push(url);
  }

  imported: string[] = [];
  pulled: string[] = [];
  private dropHandlers = new Set<(over: boolean) => void>();
  private importProgressHandlers = new Set<(p: ImportProgress) => void>();
  private importHandlers = new Set<(o: ImportOutcome[]) => void>();
  private libraryHandlers = new Set<() => void>();

  async importPaths(paths: string[]): Promise<ImportOutcome[]> {
    this.check();
    this.imported.push(...paths);
    const outcomes = paths.map(
      (path) =>
        this.options.importOutcome?.(path) ?? {
          path,
          status: 'imported' as const,
          id: `local/${path.split('/').pop()}`,
          error: null,
        },
    );
    this.importHandlers.forEach((h) => h(outcomes));
    return outcomes;
  }

  async cancelImports(): Promise<void> {
    this.actions.push('cancel imports');
  }

  async onDropHover(handler: (over: boolean) => void): Promise<Unsubscribe> {
    this.dropHandlers.add(handler);
    return () => this.dropHandlers.delete(handler);
  }

  async onImportProgress(handler: (p: ImportProgress) => void): Promise<Unsubscribe> {
    this.importProgressHandlers.add(handler);
    return () => this.importProgressHandlers.delete(handler);
  }

  async onImportFinished(handler: (o: ImportOutcome[]) => void): Promise<Unsubscribe> {
    this.importHandlers.add(handler);
    return () => this.importHandlers.delete(handler);
  }

  async onLibraryChanged(handler: () => void): Promise<Unsubscribe> {
    this.libraryHandlers.add(handler);
    return () => this.libraryHandlers.delete(handler);
  }

  /** As the window sees a drag: hover, then a drop of `paths` (imported as the Rust side would). */
  emitDrop(paths: string[]) {
    this.dropHandlers.forEach((h) => h(true));
    const phase = this.options.settings?.copyImports ? 'copying' : 'hashing';
    paths.forEach((path, i) => this.emitImportProgress({ path, phase, bytesDone: 50, bytesTotal: 100, index: i + 1, count: paths.length }));
    this.dropHandlers.forEach((h) => h(false));
    void this.importPaths(paths);
  }

  emitImportProgress(progress: ImportProgress) {
    this.importProgressHandlers.forEach((h) => h(progress));
  }

  emitDropHover(over: boolean) {
    this.dropHandlers.forEach((h) => h(over));
  }

  emitLibraryChanged() {
    this.libraryHandlers.forEach((h) => h());
  }

  async ollamaStatus(): Promise<OllamaStatus> {
    return structuredClone(this.options.ollama ?? { host: 'http://127.0.0.1:11434', available: false });
  }

  async ollamaPull(name: string): Promise<number> {
    this.check();
    this.pulled.push(name);
    return 1 << 30;
  }

  readyCalls = 0;

  async windowReady(): Promise<void> {
    this.readyCalls += 1;
  }

  async logFolder(): Promise<string> {
    return '/home/ada/.local/share/dev.model-manager.app/logs';
  }

  async localServer(): Promise<string | null> {
    const s = this.options.settings ?? defaultSettings();
    return s.localServer ? `http://127.0.0.1:${s.localServerPort}` : null;
  }

  async openLogFolder(): Promise<void> {
    this.actions.push('open logs');
  }

  async copyDiagnostics(): Promise<string> {
    this.check();
    this.actions.push('copy diagnostics');
    return 'Model Manager 0.1.0 (core 0.1.0)\nOS: Debian GNU/Linux 12\nHub token: set';
  }

  async libraryFit(): Promise<Record<string, ModelFit>> {
    return structuredClone(this.options.fit ?? {});
  }

  private settingsHandlers = new Set<() => void>();
  private errorHandlers = new Set<(e: ErrorPayload) => void>();

  async onSettingsChanged(handler: () => void): Promise<Unsubscribe> {
    this.settingsHandlers.add(handler);
    return () => this.settingsHandlers.delete(handler);
  }

  async onAppError(handler: (e: ErrorPayload) => void): Promise<Unsubscribe> {
    this.errorHandlers.add(handler);
    return () => this.errorHandlers.delete(handler);
  }

  emitSettingsChanged() {
    this.settingsHandlers.forEach((h) => h());
  }

  emitAppError(error: ErrorPayload) {
    this.errorHandlers.forEach((h) => h(error));
  }

  emitProgress(progress: DownloadProgress) {
    this.progressHandlers.forEach((h) => h(progress));
  }

  emitLifecycle(event: ModelLifecycle) {
    this.lifecycleHandlers.forEach((h) => h(event));
  }

  emitVerify(progress: VerifyProgress) {
    this.verifyHandlers.forEach((h) => h(progress));
  }

  private machines: MachineList = { current: null, machines: [], endpointPrefix: null };
  private machineHandlers = new Set<(url: string | null) => void>();

  async listMachines(): Promise<MachineList> {
    this.check();
    // As the core's endpoint_prefix makes it: the driven machine's name, safe in a model name.
    const name = this.machines.machines.find((m) => m.url === this.machines.current)?.name;
    const endpointPrefix = name ? name.trim().replace(/[^A-Za-z0-9._-]/g, '-').replace(/^-+|-+$/g, '') || null : null;
    return structuredClone({ ...this.machines, endpointPrefix });
  }

  async addMachine(name: string, url: string, token: string | null): Promise<MachineEntry> {
    this.check();
    if (!(this.options.reachable ?? []).includes(url)) {
      throw new BackendError({ code: 'network', message: `the machine at ${url} cannot be reached` });
    }
    this.actions.push(`add machine ${url}${token ? ' with a token' : ''}`);
    const entry = { name: name || url, url };
    this.machines.machines = [...this.machines.machines.filter((m) => m.url !== url), entry];
    return structuredClone(entry);
  }

  async removeMachine(url: string) {
    this.check();
    this.machines.machines = this.machines.machines.filter((m) => m.url !== url);
    if (this.machines.current === url) await this.selectMachine(null);
  }

  async selectMachine(url: string | null) {
    this.check();
    this.actions.push(`select ${url ?? 'this machine'}`);
    this.machines.current = url;
    this.machineHandlers.forEach((h) => h(url));
  }

  async onMachineChanged(handler: (url: string | null) => void): Promise<Unsubscribe> {
    this.machineHandlers.add(handler);
    return () => this.machineHandlers.delete(handler);
  }
}
