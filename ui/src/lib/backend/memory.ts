// A Backend held in memory, for unit tests and for running the UI in a plain browser.
import type { CacheScan, ErrorPayload } from '../bindings';
import { BackendError, type Backend } from './index';

export interface MemoryBackendOptions {
  scan?: CacheScan;
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
  constructor(public options: MemoryBackendOptions = {}) {}

  async listModels(): Promise<CacheScan> {
    this.calls += 1;
    if (this.options.error) throw new BackendError(this.options.error);
    return structuredClone(this.options.scan ?? emptyScan());
  }
}
