// The storage view's state: the report, and the clean-up of what can be reclaimed.
import type { CleanReport, HardwareInfo, StorageReport } from './bindings';
import { BackendError, type Backend } from './backend';

export class Storage {
  report: StorageReport | null = $state(null);
  hardware: HardwareInfo | null = $state(null);
  error: BackendError | null = $state(null);
  loading = $state(false);
  cleaning = $state(false);
  cleaned: CleanReport | null = $state(null);

  constructor(private backend: Backend) {}

  async load() {
    this.loading = true;
    this.backend.systemInfo().then((hw) => (this.hardware = hw), () => {});
    try {
      this.report = await this.backend.storageReport();
      this.error = null;
    } catch (err) {
      this.error = BackendError.from(err);
    } finally {
      this.loading = false;
    }
  }

  async clean() {
    this.cleaning = true;
    try {
      this.cleaned = await this.backend.cleanStorage();
      await this.load();
    } catch (err) {
      this.error = BackendError.from(err);
    } finally {
      this.cleaning = false;
    }
  }
}
