// The library view's state: loading, ready with a scan, or failed with an error. Components read it; only
// load() writes it.
import type { CacheScan } from './bindings';
import { BackendError, type Backend } from './backend';
import { toRows, type ModelRow } from './rows';

export type LoadState = 'loading' | 'ready' | 'error';

export class Library {
  state: LoadState = $state('loading');
  scan: CacheScan | null = $state(null);
  error: BackendError | null = $state(null);
  rows: ModelRow[] = $derived(this.scan ? toRows(this.scan) : []);

  constructor(private backend: Backend) {}

  async load(): Promise<void> {
    this.state = 'loading';
    try {
      this.scan = await this.backend.listModels();
      this.error = null;
      this.state = 'ready';
    } catch (err) {
      this.error = BackendError.from(err);
      this.state = 'error';
    }
  }
}
