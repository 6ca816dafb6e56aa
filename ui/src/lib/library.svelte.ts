// The library view's state: the list for the current query, the selected model's details, and what is being done
// to it (verify, delete). Components read it; only its methods write it.
import type {
  ActiveEntry,
  DeleteReport,
  LibraryModel,
  LibraryQuery,
  LoadedModel,
  ModelFit,
  ModelDetails,
  ModelType,
  RuntimeChange,
  VerifyProgress,
  VerifyReport,
} from './bindings';
import { Actions } from './actions.svelte';
import { LoadSettingsForm } from './loadSettings.svelte';
import { BackendError, type Backend } from './backend';

export type LoadState = 'loading' | 'ready' | 'error';

export const emptyQuery = (): LibraryQuery => ({
  modelType: null,
  status: null,
  source: null,
  text: null,
  sort: 'name',
  descending: false,
});

export class Library extends Actions {
  state: LoadState = $state('loading');
  models: LibraryModel[] = $state([]);
  error: BackendError | null = $state(null);
  query: LibraryQuery = $state(emptyQuery());
  /** True when no filter is set: an empty list then means an empty library, not "no match". */
  unfiltered = $derived(!this.query.modelType && !this.query.status && !this.query.source && !this.query.text?.trim());

  selected: string | null = $state(null);
  details: ModelDetails | null = $state(null);
  detailsError: BackendError | null = $state(null);
  verifying = $state(false);
  verifyProgress: VerifyProgress | null = $state(null);
  verifyReport: VerifyReport | null = $state(null);
  /** Whether each model runs here (filled in after the list, as it reads headers). */
  fit: Record<string, ModelFit> = $state({});
  /** The active model of each type. */
  active: Partial<Record<ModelType, ActiveEntry>> = $state({});
  /** What is loaded in a runtime, by model id (several models may be loaded at once). */
  loaded: Record<string, LoadedModel> = $state({});
  /** Types whose load was asked and has not answered yet. */
  loading: ModelType[] = $state([]);
  /** A delete waiting for confirmation: what it would free. */
  pendingDelete: DeleteReport | null = $state(null);
  /** The selected model's load settings, as its details edit them. */
  readonly loadSettings: LoadSettingsForm;
  private loads = 0;

  constructor(private backend: Backend) {
    super();
    this.loadSettings = new LoadSettingsForm(backend);
  }

  async load(): Promise<void> {
    const ticket = ++this.loads;
    if (this.models.length === 0) this.state = 'loading';
    try {
      const [models, active, loaded] = await Promise.all([
        this.backend.listLibrary($state.snapshot(this.query)),
        this.backend.activeModels(),
        this.backend.loadedModels(),
      ]);
      if (ticket !== this.loads) return; // a newer query answered first
      this.models = models;
      this.active = active;
      this.loaded = Object.fromEntries(loaded.map((m) => [m.id, m]));
      this.backend.libraryFit().then((fit) => (this.fit = fit), () => {});
      this.error = null;
      this.state = 'ready';
      if (this.selected && !models.some((m) => m.id === this.selected) && this.unfiltered) this.close();
    } catch (err) {
      if (ticket !== this.loads) return;
      this.error = BackendError.from(err);
      this.state = 'error';
    }
  }

  async select(id: string) {
    this.selected = id;
    void this.loadFolders();
    this.verifyReport = null;
    this.verifyProgress = null;
    this.pendingDelete = null;
    this.actionError = null;
    await this.refreshDetails();
  }

  close() {
    this.selected = null;
    this.details = null;
    this.pendingDelete = null;
    this.verifyReport = null;
  }

  async refreshDetails() {
    if (!this.selected) return;
    try {
      this.details = await this.backend.modelDetails(this.selected);
      this.detailsError = null;
    } catch (err) {
      this.details = null;
      this.detailsError = BackendError.from(err);
    }
  }

  async setType(modelType: ModelType | null) {
    if (!this.selected) return;
    await this.act(async () => {
      await this.backend.setModelType(this.selected!, modelType);
      await Promise.all([this.load(), this.refreshDetails()]);
    });
  }

  onVerifyProgress(progress: VerifyProgress) {
    if (progress.id === this.selected) this.verifyProgress = progress;
  }

  async verify(repair: boolean) {
    if (!this.selected) return;
    this.verifying = true;
    this.verifyProgress = null;
    await this.act(async () => {
      this.verifyReport = await this.backend.verifyModel(this.selected!, repair);
      if (repair) await this.load();
    });
    this.verifying = false;
  }

  /** Asks the core what deleting would free, then waits for confirmDelete(). */
  async planDelete(revision: string | null) {
    if (!this.selected) return;
    await this.act(async () => {
      this.pendingDelete = await this.backend.deleteModel(this.selected!, revision, true);
    });
  }

  async confirmDelete() {
    const plan = this.pendingDelete;
    if (!plan) return;
    await this.act(async () => {
      await this.backend.deleteModel(plan.id, plan.revision, false);
      this.pendingDelete = null;
      if (plan.wholeModel) this.close();
      else await this.refreshDetails();
      await this.load();
    });
  }

  /** The models an adapter may be linked to: the library's GGUF models that are not adapters. */
  bases(adapter: LibraryModel): LibraryModel[] {
    return this.models.filter((m) => m.format === 'gguf' && !m.adapter && m.id !== adapter.id);
  }

  /** The cache folders a model of them may move to: the cache and the library folders. */
  folders: string[] = $state([]);
  moving = $state(false);

  async loadFolders() {
    try {
      const stats = await this.backend.statistics();
      this.folders = stats.folders.filter((f) => f.kind !== 'models-folder').map((f) => f.path);
    } catch {
      this.folders = [];
    }
  }

  /** Moves the selected model to `folder`. */
  async moveTo(folder: string) {
    if (!this.selected) return;
    this.moving = true;
    try {
      await this.act(async () => {
        await this.backend.moveModel(this.selected!, folder);
        await this.load();
        await this.refreshDetails();
      });
    } finally {
      this.moving = false;
    }
  }

  /** Pins the selected model for storage (never removed to make room), or unpins it. */
  async pinForStorage(pinned: boolean) {
    if (!this.selected) return;
    await this.act(async () => {
      await this.backend.pinForStorage(this.selected!, pinned);
      await this.load();
      await this.refreshDetails();
    });
  }

  /** Links the selected adapter to `base` (null: back to the one it names or fits). */
  async linkAdapter(base: string | null) {
    if (!this.selected) return;
    await this.act(async () => {
      await this.backend.linkAdapter(this.selected!, base);
      await this.load();
      await this.refreshDetails();
    });
  }

  /** The types the selected model is active for. */
  activeTypes(id: string): ModelType[] {
    return (Object.entries(this.active) as [ModelType, ActiveEntry][]).filter(([, e]) => e.id === id).map(([t]) => t);
  }

  async activate(modelType: ModelType | null) {
    if (!this.selected) return;
    await this.act(async () => {
      await this.backend.activateModel(this.selected!, modelType);
      await Promise.all([this.load(), this.refreshDetails()]);
    });
  }

  async deactivate(modelType: ModelType) {
    await this.act(async () => {
      await this.backend.deactivateType(modelType);
      await Promise.all([this.load(), this.refreshDetails()]);
    });
  }

  /** Serves the active model of `modelType` on its local endpoint. */
  async loadType(modelType: ModelType) {
    this.loading = [...this.loading, modelType];
    try {
      await this.act(async () => {
        const loaded = await this.backend.loadModel(modelType, null);
        this.loaded = { ...this.loaded, [loaded.id]: loaded };
      });
    } finally {
      this.loading = this.loading.filter((t) => t !== modelType);
    }
  }

  /** Unloads a type's models (`target` a type) or one model (its id). */
  async unload(target: string) {
    await this.act(async () => {
      const gone = await this.backend.unloadModel(target);
      this.loaded = Object.fromEntries(Object.entries(this.loaded).filter(([id]) => !gone.some((m) => m.id === id)));
    });
  }

  /** Pins a loaded model (never unloaded for another) or unpins it. */
  async pin(id: string, pinned: boolean) {
    await this.act(async () => {
      await this.backend.pinModel(id, pinned);
      const m = this.loaded[id];
      if (m) this.loaded = { ...this.loaded, [id]: { ...m, pinned } };
    });
  }

  /** The loaded model of a library entry: itself, or one of its quantisations (`org/name:Q4_K_M`). */
  loadedOf(id: string): LoadedModel | undefined {
    return this.loaded[id] ?? Object.values(this.loaded).find((m) => m.id.startsWith(`${id}:`));
  }

  /** A change the runtime host reported (from this window, `mm`, the tray, a crash, a measurement). */
  onRuntimeChanged(change: RuntimeChange) {
    if (change.loaded) {
      this.loaded = { ...this.loaded, [change.id]: change.loaded };
    } else {
      const { [change.id]: _gone, ...rest } = this.loaded;
      this.loaded = rest;
    }
    // A swap on a type's endpoint changes which model is active.
    const now = change.loaded;
    if (now?.endpoint && this.active[now.modelType]?.id !== now.id) this.load();
  }

  openFolder(path: string) {
    return this.act(() => this.backend.openFolder(path));
  }

}
