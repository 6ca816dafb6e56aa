// A Backend held in memory, for unit tests and for running the UI in a plain browser. Tests drive downloads by
// calling emitProgress / emitLifecycle as the Rust side would.
import type {
  CacheScan,
  DownloadPreview,
  DownloadProgress,
  DownloadRequest,
  ErrorPayload,
  ModelLifecycle,
} from '../bindings';
import { BackendError, type Backend, type Unsubscribe } from './index';

export interface MemoryBackendOptions {
  scan?: CacheScan;
  preview?: DownloadPreview;
  /** When set, every call fails with this error. */
  error?: ErrorPayload;
}

export const emptyScan = (cacheDir = '/home/user/.cache/huggingface/hub'): CacheScan => ({
  cacheDir,
  exists: true,
  repos: [],
  problems: [],
  sizeOnDisk: 0,
});

export class MemoryBackend implements Backend {
  calls = 0;
  started: DownloadRequest[] = [];
  actions: string[] = [];
  private progressHandlers = new Set<(p: DownloadProgress) => void>();
  private lifecycleHandlers = new Set<(e: ModelLifecycle) => void>();

  constructor(public options: MemoryBackendOptions = {}) {}

  private check() {
    this.calls += 1;
    if (this.options.error) throw new BackendError(this.options.error);
  }

  async listModels(): Promise<CacheScan> {
    this.check();
    return structuredClone(this.options.scan ?? emptyScan());
  }

  async previewDownload(request: DownloadRequest): Promise<DownloadPreview> {
    this.check();
    if (!this.options.preview) throw new BackendError({ code: 'not-found', message: `${request.repo} was not found` });
    return structuredClone(this.options.preview);
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

  emitProgress(progress: DownloadProgress) {
    this.progressHandlers.forEach((h) => h(progress));
  }

  emitLifecycle(event: ModelLifecycle) {
    this.lifecycleHandlers.forEach((h) => h(event));
  }
}
