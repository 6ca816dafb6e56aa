// The machines the window can drive: this one, or another one's `mm serve` (added by address and token, which
// the Rust side checks before keeping them). Switching makes Library, Downloads, System, Activation and
// Discover's download act there.
import type { MachineList } from './bindings';
import { BackendError, type Backend } from './backend';

export class Machines {
  list: MachineList = $state({ current: null, machines: [], endpointPrefix: null });
  error: BackendError | null = $state(null);
  adding = $state(false);

  constructor(private backend: Backend) {}

  /** The name of the machine driven now. */
  get currentName(): string {
    const url = this.list.current;
    return url === null ? 'This machine' : (this.list.machines.find((m) => m.url === url)?.name ?? url);
  }

  async load() {
    try {
      this.list = await this.backend.listMachines();
      this.error = null;
    } catch (err) {
      this.error = BackendError.from(err);
    }
  }

  /** Adds a machine; false (with the error shown) when it does not answer with that token. */
  async add(name: string, url: string, token: string): Promise<boolean> {
    this.adding = true;
    try {
      await this.backend.addMachine(name.trim(), url.trim(), token.trim() || null);
      this.error = null;
      await this.load();
      return true;
    } catch (err) {
      this.error = BackendError.from(err);
      return false;
    } finally {
      this.adding = false;
    }
  }

  async remove(url: string) {
    try {
      await this.backend.removeMachine(url);
      await this.load();
    } catch (err) {
      this.error = BackendError.from(err);
    }
  }

  async select(url: string | null) {
    try {
      await this.backend.selectMachine(url);
      await this.load();
    } catch (err) {
      this.error = BackendError.from(err);
    }
  }
}
