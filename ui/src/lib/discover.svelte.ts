// The Discover view's state: the hub search as the user types (debounced; stale answers dropped, stale requests
// cancelled by the core), the starter catalog, and the chosen repo's details, fit and file selection.
import type {
  CatalogEntry,
  CompatReport,
  FileCompat,
  Quantisation,
  RepoDetails,
  SearchHit,
  SearchQuery,
  StarterCatalog,
} from './bindings';
import { Actions } from './actions.svelte';
import { BackendError, type Backend } from './backend';

export type SearchState = 'idle' | 'loading' | 'ready' | 'error';

export const emptySearch = (): SearchQuery => ({
  text: '',
  author: null,
  task: null,
  library: null,
  tags: [],
  sort: 'downloads',
  limit: 30,
});

/** How long typing must pause before a search goes out. */
export const DEBOUNCE_MS = 300;

export class Discover extends Actions {
  query: SearchQuery = $state(emptySearch());
  state: SearchState = $state('idle');
  hits: SearchHit[] = $state([]);
  next: string | null = $state(null);
  loadingMore = $state(false);
  error: BackendError | null = $state(null);
  /** Row under the keyboard cursor (results, or catalog entries when there is no search). */
  cursor = $state(0);
  /** With no words and no filters the view shows the starter catalog instead of results. */
  browsing = $derived(!this.query.text.trim() && !this.query.task && !this.query.library && !this.query.author);

  catalog: StarterCatalog | null = $state(null);
  catalogError: BackendError | null = $state(null);

  selected: string | null = $state(null);
  details: RepoDetails | null = $state(null);
  detailsError: BackendError | null = $state(null);
  compat: CompatReport | null = $state(null);
  compatError: BackendError | null = $state(null);
  /** The files chosen for download. */
  chosen: string[] = $state([]);
  /** The last download started from here, to point at the Downloads view. */
  queued: string | null = $state(null);

  private searches = 0;
  private selections = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private backend: Backend,
    private debounceMs = DEBOUNCE_MS,
  ) {
    super();
  }

  /** Offline as the core said it (HF_HUB_OFFLINE), or the last search could not reach the hub. */
  get offline(): boolean {
    return (this.catalog?.offline ?? false) || this.error?.code === 'network';
  }

  async loadCatalog() {
    try {
      this.catalog = await this.backend.starterCatalog();
      this.catalogError = null;
    } catch (err) {
      this.catalogError = BackendError.from(err);
    }
  }

  /** The words changed: search once typing pauses. */
  type(text: string) {
    this.query.text = text;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.search();
    }, this.debounceMs);
  }

  /** A filter or the sort changed: search at once. */
  set(change: Partial<SearchQuery>) {
    Object.assign(this.query, change);
    if (this.timer) clearTimeout(this.timer);
    this.search();
  }

  async search() {
    const ticket = ++this.searches;
    this.cursor = 0;
    if (this.browsing) {
      this.state = 'idle';
      this.hits = [];
      this.next = null;
      this.error = null;
      return;
    }
    this.state = 'loading';
    try {
      const page = await this.backend.searchModels($state.snapshot(this.query), null);
      if (ticket !== this.searches) return; // a newer search answered first
      this.hits = page.models;
      this.next = page.next;
      this.error = null;
      this.state = 'ready';
    } catch (err) {
      const e = BackendError.from(err);
      // A newer search of this window will answer. Another client's search on the same machine can cancel this one
      // too: that shows, rather than a search that never ends.
      if (ticket !== this.searches) return;
      this.error = e;
      this.state = 'error';
    }
  }

  async loadMore() {
    if (!this.next || this.loadingMore) return;
    const ticket = this.searches;
    this.loadingMore = true;
    try {
      const page = await this.backend.searchModels($state.snapshot(this.query), this.next);
      if (ticket === this.searches) {
        const seen = new Set(this.hits.map((h) => h.id));
        this.hits = [...this.hits, ...page.models.filter((h) => !seen.has(h.id))];
        this.next = page.next;
      }
    } catch (err) {
      const e = BackendError.from(err);
      if (e.code !== 'cancelled') this.actionError = e;
    } finally {
      this.loadingMore = false;
    }
  }

  /** The ids the keyboard moves over, in the order shown. */
  get rows(): string[] {
    return this.browsing ? (this.catalog?.entries ?? []).map((e) => e.id) : this.hits.map((h) => h.id);
  }

  move(by: number) {
    const n = this.rows.length;
    if (n === 0) return;
    this.cursor = Math.min(n - 1, Math.max(0, this.cursor + by));
  }

  /** Opens a repo's details; a catalog entry preselects its files. */
  async select(id: string, entry: CatalogEntry | null = null) {
    const ticket = ++this.selections;
    this.selected = id;
    this.details = null;
    this.detailsError = null;
    this.compat = null;
    this.compatError = null;
    this.queued = null;
    this.actionError = null;
    try {
      const details = await this.backend.repoDetails(id, null);
      if (ticket !== this.selections) return;
      this.details = details;
      this.chosen = entry?.files.length ? [...entry.files] : defaultChoice(details);
    } catch (err) {
      if (ticket === this.selections) this.detailsError = BackendError.from(err);
      return;
    }
    // The fit needs header reads on the hub: it follows the details.
    try {
      const compat = await this.backend.checkCompatibility(id, this.details.commit);
      if (ticket === this.selections) this.compat = compat;
    } catch (err) {
      if (ticket === this.selections) this.compatError = BackendError.from(err);
    }
  }

  /** A model was downloaded or deleted: what is marked installed is read again (the core caches the rest). */
  async onModelChanged(repo: string) {
    if (this.catalog) this.loadCatalog();
    // Only when no search is pending: a search started here would cancel the user's in the core.
    if (this.state === 'ready' && !this.timer && this.hits.some((h) => h.id === repo)) {
      const ticket = this.searches;
      try {
        const page = await this.backend.searchModels($state.snapshot(this.query), null);
        const installed = new Map(page.models.map((h) => [h.id, h.installed]));
        if (ticket === this.searches) this.hits = this.hits.map((h) => ({ ...h, installed: installed.get(h.id) ?? h.installed }));
      } catch {
        // The marks stay as they were; the next search reads them again.
      }
    }
    if (this.selected === repo && this.details) {
      const ticket = this.selections;
      try {
        const details = await this.backend.repoDetails(repo, null);
        if (ticket === this.selections) this.details = details;
      } catch {
        // Keep what is shown.
      }
    }
  }

  close() {
    this.selections++;
    this.selected = null;
    this.details = null;
    this.detailsError = null;
    this.compat = null;
  }

  /** The fit of one file (GGUF) or of the whole model (safetensors). */
  fitOf(file: string | null): FileCompat | null {
    const entries = this.compat?.entries ?? [];
    return entries.find((e) => e.file === file) ?? null;
  }

  /** The fit of a quantisation: that of its first file (shards share one header). */
  quantFit(q: Quantisation): FileCompat | null {
    return this.fitOf(q.files[0]);
  }

  chooseQuant(q: Quantisation) {
    this.chosen = [...q.files];
  }

  toggle(path: string) {
    this.chosen = this.chosen.includes(path) ? this.chosen.filter((p) => p !== path) : [...this.chosen, path];
  }

  get chosenBytes(): number {
    return (this.details?.files ?? []).filter((f) => this.chosen.includes(f.path)).reduce((s, f) => s + f.size, 0);
  }

  /** Downloads the chosen files, or the whole repo with `all`. */
  async download(all: boolean) {
    const d = this.details;
    if (!d) return;
    await this.act(async () => {
      await this.backend.startDownload({
        repo: d.id,
        revision: d.revision === 'main' ? null : d.revision,
        include: [],
        exclude: [],
        files: all ? [] : [...this.chosen],
        url: null,
        evict: false,
      });
      this.queued = d.id;
    });
  }

  /** Downloads a catalog entry's files straight from the list. */
  async get(entry: CatalogEntry) {
    await this.act(async () => {
      await this.backend.startDownload({ repo: entry.id, revision: null, include: [], exclude: [], files: [...entry.files], url: null, evict: false });
      this.queued = entry.id;
    });
  }

  openUrl(url: string) {
    return this.act(() => this.backend.openUrl(url));
  }
}

/** What to preselect: for GGUF repos one quantisation (Q4_K_M when offered, else the middle one); else all. */
export function defaultChoice(d: RepoDetails): string[] {
  const q = d.quantisations;
  if (q.length === 0) return d.files.map((f) => f.path);
  const pick = q.find((x) => x.name === 'Q4_K_M') ?? q[Math.floor((q.length - 1) / 2)];
  return [...pick.files];
}
