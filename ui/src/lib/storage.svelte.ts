// The storage view's state: the report, and the clean-up of what can be reclaimed.
import type { CleanReport, HardwareInfo, Statistics, StorageReport } from './bindings';
import { BackendError, type Backend } from './backend';

export class Storage {
  report: StorageReport | null = $state(null);
  hardware: HardwareInfo | null = $state(null);
  /** The machine's figures. */
  stats: Statistics | null = $state(null);
  error: BackendError | null = $state(null);
  loading = $state(false);
  cleaning = $state(false);
  cleaned: CleanReport | null = $state(null);
  logFolder: string | null = $state(null);
  /** The app's local server: its address, or why it does not serve. */
  localServer: string | null = $state(null);
  localServerError: string | null = $state(null);
  /** The diagnostics once copied, shown for the user to see what they share; or what went wrong. */
  diagnostics: string | null = $state(null);
  diagnosticsNote: string | null = $state(null);

  constructor(private backend: Backend) {}

  async load() {
    this.loading = true;
    this.backend.systemInfo().then((hw) => (this.hardware = hw), () => {});
    this.backend.logFolder().then((dir) => (this.logFolder = dir), () => {});
    this.backend.statistics().then((s) => (this.stats = s), () => {});
    this.backend.localServer().then(
      (address) => {
        this.localServer = address;
        this.localServerError = null;
      },
      (err) => {
        this.localServer = null;
        this.localServerError = BackendError.from(err).message;
      },
    );
    try {
      this.report = await this.backend.storageReport();
      this.error = null;
    } catch (err) {
      this.error = BackendError.from(err);
    } finally {
      this.loading = false;
    }
  }

  /** Puts the diagnostics on the clipboard, and shows them. */
  async copyDiagnostics() {
    this.diagnosticsNote = 'Gathering…';
    try {
      this.diagnostics = await this.backend.copyDiagnostics();
      this.diagnosticsNote = 'Copied to the clipboard: paste it into the bug report.';
    } catch (err) {
      this.diagnostics = null;
      this.diagnosticsNote = `Diagnostics could not be copied: ${BackendError.from(err).message}`;
    }
  }

  async openLogFolder() {
    try {
      await this.backend.openLogFolder();
    } catch (err) {
      this.diagnosticsNote = BackendError.from(err).message;
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
