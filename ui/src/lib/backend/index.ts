// The one door to the Rust side. Components and state never import @tauri-apps/api; they take a Backend, which
// is the Tauri implementation in the app and the in-memory one in tests.
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
  CleanReport,
  DeleteReport,
  DownloadPreview,
  DownloadProgress,
  DownloadRequest,
  ErrorCode,
  ErrorPayload,
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
  ModelLifecycle,
  ModelType,
  RuntimeChange,
  SettingsPatch,
  SettingsView,
  StorageReport,
  VerifyProgress,
  VerifyReport,
} from '../bindings';

export type Unsubscribe = () => void;

export interface Backend {
  /** Every repo in the Hugging Face cache, with revisions, files, sizes and status. */
  listModels(): Promise<CacheScan>;
  /** What downloading would fetch, resolved against the hub without writing anything. */
  previewDownload(request: DownloadRequest): Promise<DownloadPreview>;
  /** Queues a download; returns its id (the existing one if the same download is queued or running). */
  startDownload(request: DownloadRequest): Promise<number>;
  pauseDownload(id: number): Promise<void>;
  resumeDownload(id: number): Promise<void>;
  cancelDownload(id: number): Promise<void>;
  listDownloads(): Promise<DownloadProgress[]>;
  onDownloadProgress(handler: (progress: DownloadProgress) => void): Promise<Unsubscribe>;
  onModelLifecycle(handler: (event: ModelLifecycle) => void): Promise<Unsubscribe>;
  /** Every model, merged with the download queue, filtered and sorted by the core. */
  listLibrary(query: LibraryQuery): Promise<LibraryModel[]>;
  modelDetails(id: string): Promise<ModelDetails>;
  /** Deletes a model (or one revision); a dry run says what would be freed. */
  deleteModel(id: string, revision: string | null, dryRun: boolean): Promise<DeleteReport>;
  verifyModel(id: string, repair: boolean): Promise<VerifyReport>;
  onVerifyProgress(handler: (progress: VerifyProgress) => void): Promise<Unsubscribe>;
  /** Moves a model to another of the library's folders (the cache, or a library folder). */
  moveModel(id: string, folder: string): Promise<MoveReport>;
  /** Pins a model so nothing removes it to make room under the storage limit, or unpins it. */
  pinForStorage(id: string, pinned: boolean): Promise<void>;
  /** Links an adapter to the base it runs on (null: back to the one it names or fits); answers the adapter. */
  linkAdapter(id: string, base: string | null): Promise<LibraryModel>;
  /** Remembers the user's type for a model; null goes back to the inferred one. */
  setModelType(id: string, modelType: ModelType | null): Promise<void>;
  openFolder(path: string): Promise<void>;
  storageReport(): Promise<StorageReport>;
  /** The machine's figures: models by type, status and source, bytes per folder, downloads, loaded, mirror hits. */
  statistics(): Promise<Statistics>;
  cleanStorage(): Promise<CleanReport>;
  getSettings(): Promise<SettingsView>;
  updateSettings(patch: SettingsPatch): Promise<SettingsView>;
  /** Makes a model the active one of its type (or of `modelType`), switching from the one before. */
  activateModel(id: string, modelType: ModelType | null): Promise<ActiveEntry>;
  deactivateType(modelType: ModelType): Promise<void>;
  activeModels(): Promise<Partial<Record<ModelType, ActiveEntry>>>;
  /** Serves a type's active model (or activates a model and serves it) on a local endpoint; resolves once ready. */
  loadModel(target: string | null, context: number | null): Promise<LoadedModel>;
  /** Stops serving a type or model (or everything, with null). */
  unloadModel(target: string | null): Promise<LoadedModel[]>;
  /** Pins a model (never unloaded for another) or unpins it. */
  pinModel(id: string, pinned: boolean): Promise<void>;
  loadedModels(): Promise<LoadedModel[]>;
  /** A loaded model's state, memory or endpoint changed, or it was unloaded (from any face). */
  onRuntimeChanged(handler: (change: RuntimeChange) => void): Promise<Unsubscribe>;
  /** The settings file changed outside the window (`mm config set`, `mm activate`). */
  onSettingsChanged(handler: () => void): Promise<Unsubscribe>;
  systemInfo(): Promise<HardwareInfo>;
  /** Will it run here: a library model (files on disk) or a hub repo (headers read remotely). */
  /** Will it run here; with `loadSettings`, sized for them (as a form holds them) instead of the kept ones. */
  checkCompatibility(target: string, revision: string | null, loadSettings?: LoadSettings | null): Promise<CompatReport>;
  /** The llama.cpp builds of the machine and the one that loads models. */
  runtimes(): Promise<Runtimes>;
  /** Gets llama.cpp for the machine (a release tag and backend, else the latest for its hardware). */
  getRuntime(release: string | null, backend: string | null): Promise<RuntimeBuild>;
  onRuntimeProgress(handler: (progress: GetProgress) => void): Promise<Unsubscribe>;
  useRuntime(name: string): Promise<Runtimes>;
  rollbackRuntime(): Promise<Runtimes>;
  removeRuntime(name: string): Promise<RuntimeRemoved>;
  /** A model's load settings. */
  loadSettings(id: string): Promise<LoadSettings>;
  /** Keeps a model's load settings (all of them) on the machine the window drives. */
  keepLoadSettings(id: string, settings: LoadSettings): Promise<LoadSettings>;
  /** The fit of every library model, for the badges. */
  libraryFit(): Promise<Record<string, ModelFit>>;
  /** One page of the hub's model search; `next` is the cursor a previous page gave. A newer search cancels an
   * older one, which then rejects with code `cancelled`. */
  searchModels(query: SearchQuery, next: string | null): Promise<SearchPage>;
  /** A hub repo's files, GGUF quantisations and safe card HTML, without downloading it. */
  repoDetails(repo: string, revision: string | null): Promise<RepoDetails>;
  /** The starter catalog shipped with the app, marked with what is installed. */
  starterCatalog(): Promise<StarterCatalog>;
  /** Opens an http(s) link in the system browser. */
  openUrl(url: string): Promise<void>;
  /** Imports files or folders by path (what a drop on the window does). */
  importPaths(paths: string[]): Promise<ImportOutcome[]>;
  /** Stops the imports running now; their unfinished paths come back `cancelled`. */
  cancelImports(): Promise<void>;
  /** Files are dragged over the window (true) or left it (false). */
  onDropHover(handler: (over: boolean) => void): Promise<Unsubscribe>;
  onImportProgress(handler: (progress: ImportProgress) => void): Promise<Unsubscribe>;
  /** A dropped or imported batch finished: one outcome per path. */
  onImportFinished(handler: (outcomes: ImportOutcome[]) => void): Promise<Unsubscribe>;
  /** Models appeared or went in a library folder or the models folder. */
  onLibraryChanged(handler: () => void): Promise<Unsubscribe>;
  /** Whether the local Ollama server answers, and where it is looked for. */
  ollamaStatus(): Promise<OllamaStatus>;
  /** Pulls a model into Ollama; it shows in the downloads list. Returns its download id. */
  ollamaPull(name: string): Promise<number>;
  /** The window drew its first view (a smoke run of the app quits here). */
  windowReady(): Promise<void>;
  /** Where the app writes its log. */
  logFolder(): Promise<string>;
  /** The app's local server (Settings → Local server): its address while it serves, null while it is off; it
   * fails with why when it cannot serve. */
  localServer(): Promise<string | null>;
  /** Opens the log folder in the file manager. */
  openLogFolder(): Promise<void>;
  /** Puts the text for a bug report (version, system, settings without the token, the end of the log) on the
   * clipboard, and returns it. */
  copyDiagnostics(): Promise<string>;
  /** Something done outside a command failed (a tray click). */
  onAppError(handler: (error: ErrorPayload) => void): Promise<Unsubscribe>;
  /** Other machines' `mm serve` the window can drive, and the one it drives now (null: this machine). */
  listMachines(): Promise<MachineList>;
  /** Adds a machine by its address and token, once it answers with them. */
  addMachine(name: string, url: string, token: string | null): Promise<MachineEntry>;
  removeMachine(url: string): Promise<void>;
  /** Library, Downloads, System, Activation and Discover's download act on this machine from now on. */
  selectMachine(url: string | null): Promise<void>;
  /** The window drives another machine now: read everything again. */
  onMachineChanged(handler: (url: string | null) => void): Promise<Unsubscribe>;
}

/** A failed command: the code to branch on and the message to show. */
export class BackendError extends Error implements ErrorPayload {
  code: ErrorCode;
  constructor(payload: ErrorPayload) {
    super(payload.message);
    this.name = 'BackendError';
    this.code = payload.code;
  }

  /** Whatever a command threw, as a BackendError: the Rust side rejects with an ErrorPayload. */
  static from(err: unknown): BackendError {
    if (err instanceof BackendError) return err;
    if (typeof err === 'object' && err !== null && 'code' in err && 'message' in err) {
      return new BackendError(err as ErrorPayload);
    }
    return new BackendError({ code: 'internal', message: String(err) });
  }
}
