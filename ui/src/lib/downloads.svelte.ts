// Downloads as the window sees them: a list patched by progress events, and the preview of what to fetch next.
import type { CompatReport, DownloadPreview, DownloadProgress, DownloadRequest, OllamaStatus, UrlSource } from './bindings';
import { Actions } from './actions.svelte';
import { BackendError, type Backend } from './backend';

export class DownloadList extends Actions {
  items: DownloadProgress[] = $state([]);
  active: number = $derived(this.items.filter((d) => !['completed', 'failed', 'cancelled'].includes(d.state)).length);
  preview: DownloadPreview | null = $state(null);
  previewing = $state(false);
  previewError: BackendError | null = $state(null);
  /** Whether the previewed repo will run here (its headers, read from the hub); null while unknown. */
  compat: CompatReport | null = $state(null);
  compatError: BackendError | null = $state(null);
  /** The request the preview was made for, started as is by start(). */
  private previewed: DownloadRequest | null = null;

  constructor(private backend: Backend) {
    super();
  }

  /** Loads the current list and follows progress events from then on. */
  async connect(): Promise<() => void> {
    const stop = await this.backend.onDownloadProgress((p) => this.apply(p));
    for (const p of await this.backend.listDownloads()) this.apply(p);
    return stop;
  }

  /** The list of the machine driven now, from scratch (after switching machines). */
  async reload() {
    const list = await this.backend.listDownloads();
    this.items = [];
    for (const p of list) this.apply(p);
  }

  apply(progress: DownloadProgress) {
    const i = this.items.findIndex((d) => d.id === progress.id);
    if (i === -1) this.items.unshift(progress);
    else this.items[i] = progress;
  }

  async previewRequest(request: DownloadRequest) {
    this.previewing = true;
    this.previewError = null;
    this.preview = null;
    this.compat = null;
    this.compatError = null;
    try {
      this.preview = await this.backend.previewDownload(request);
      this.previewed = request;
      const preview = this.preview;
      this.backend.checkCompatibility(preview.repo, preview.commit).then(
        (report) => {
          if (this.preview === preview) this.compat = report;
        },
        (err) => {
          if (this.preview === preview) this.compatError = BackendError.from(err);
        },
      );
    } catch (err) {
      this.previewError = BackendError.from(err);
    } finally {
      this.previewing = false;
    }
  }

  clearPreview() {
    this.preview = null;
    this.compat = null;
    this.previewError = null;
    this.previewed = null;
  }

  /** Starts the previewed download; with `evict`, removing what its preview's room names first. */
  async start(evict = false) {
    if (!this.previewed) return;
    await this.act(() => this.backend.startDownload({ ...this.previewed!, evict }));
    this.clearPreview();
  }

  /** A file from a URL, straight into the queue (there is nothing to preview). */
  startUrl(source: UrlSource) {
    return this.act(() =>
      this.backend.startDownload({ repo: '', revision: null, include: [], exclude: [], files: [], url: source, evict: false }),
    );
  }

  ollama: OllamaStatus | null = $state(null);

  async loadOllama() {
    try {
      this.ollama = await this.backend.ollamaStatus();
    } catch {
      this.ollama = null;
    }
  }

  pullOllama(name: string) {
    return this.act(() => this.backend.ollamaPull(name));
  }

  pause = (id: number) => this.act(() => this.backend.pauseDownload(id));
  resume = (id: number) => this.act(() => this.backend.resumeDownload(id));
  cancel = (id: number) => this.act(() => this.backend.cancelDownload(id));

}

/** Splits "*.json, *Q4_K_M*" into globs. */
export function parseGlobs(text: string): string[] {
  return text
    .split(/[,\s]+/)
    .map((g) => g.trim())
    .filter((g) => g.length > 0);
}

/** A direct download link: http(s) and not a page of the hub (those are repos). */
export function isDirectUrl(text: string): boolean {
  try {
    const url = new URL(text.trim());
    return ['http:', 'https:'].includes(url.protocol) && !['huggingface.co', 'hf.co'].includes(url.hostname);
  } catch {
    return false;
  }
}

/** A checksum as typed: 64 hex characters are a sha256, 32 an md5; anything else is not one. */
export function checksumOf(text: string): Pick<UrlSource, 'sha256' | 'md5'> | null {
  const t = text.trim().toLowerCase();
  if (!t) return { sha256: null, md5: null };
  if (/^[0-9a-f]{64}$/.test(t)) return { sha256: t, md5: null };
  if (/^[0-9a-f]{32}$/.test(t)) return { sha256: null, md5: t };
  return null;
}
