// Files dropped on the window: the drop target while they hover, hashing or copying progress, and what became of each.
import type { ImportOutcome, ImportProgress } from './bindings';
import type { Backend, Unsubscribe } from './backend';

export class Imports {
  hovering = $state(false);
  progress: ImportProgress | null = $state(null);
  outcomes: ImportOutcome[] | null = $state(null);

  constructor(private backend: Backend) {}

  connect(): Promise<Unsubscribe[]> {
    return Promise.all([
      this.backend.onDropHover((over) => (this.hovering = over)),
      this.backend.onImportProgress((p) => {
        this.progress = p;
        this.outcomes = null;
      }),
      this.backend.onImportFinished((outcomes) => {
        this.progress = null;
        this.outcomes = outcomes;
      }),
    ]);
  }

  get counts() {
    const o = this.outcomes ?? [];
    return {
      imported: o.filter((x) => x.status === 'imported').length,
      duplicate: o.filter((x) => x.status === 'duplicate').length,
      failed: o.filter((x) => x.status === 'failed').length,
      cancelled: o.filter((x) => x.status === 'cancelled').length,
    };
  }

  /** Stops the imports under way; the outcomes that follow say which paths were left. */
  cancel() {
    void this.backend.cancelImports();
  }

  dismiss() {
    this.outcomes = null;
  }
}
