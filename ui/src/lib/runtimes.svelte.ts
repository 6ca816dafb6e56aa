// Settings → Runtimes: the llama.cpp builds of the machine the window drives, which one loads models, and getting
// llama.cpp (with its download's progress), using, rolling back and removing builds.
import type { GetProgress, Runtimes } from './bindings';
import { BackendError, type Backend } from './backend';

export class RuntimesState {
  runtimes: Runtimes | null = $state(null);
  error: BackendError | null = $state(null);
  /** What is being done: `get`, `use NAME`, `rollback`, `remove NAME`. */
  busy: string | null = $state(null);
  progress: GetProgress | null = $state(null);
  /** The last get's result, said once. */
  got: string | null = $state(null);

  constructor(private backend: Backend) {}

  /** Follows a get's progress; call once. */
  connect() {
    return this.backend.onRuntimeProgress((p) => (this.progress = p));
  }

  async load() {
    try {
      this.runtimes = await this.backend.runtimes();
      this.error = null;
    } catch (err) {
      this.error = BackendError.from(err);
    }
  }

  private async act(what: string, work: () => Promise<Runtimes | null>) {
    this.busy = what;
    this.error = null;
    this.got = null;
    try {
      const runtimes = await work();
      if (runtimes) this.runtimes = runtimes;
      else await this.load();
    } catch (err) {
      this.error = BackendError.from(err);
    } finally {
      this.busy = null;
      this.progress = null;
    }
  }

  get() {
    return this.act('get', async () => {
      const build = await this.backend.getRuntime(null, null);
      // The list is read before the message shows, so the two never disagree.
      this.runtimes = await this.backend.runtimes();
      this.got = `${build.name} (${build.version ?? 'unknown version'}) loads models now.`;
      return this.runtimes;
    });
  }

  use(name: string) {
    return this.act(`use ${name}`, () => this.backend.useRuntime(name));
  }

  rollback() {
    return this.act('rollback', () => this.backend.rollbackRuntime());
  }

  remove(name: string) {
    return this.act(`remove ${name}`, async () => {
      await this.backend.removeRuntime(name);
      return null;
    });
  }
}
