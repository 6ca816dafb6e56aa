// The settings view's state: what is saved, and the error of the last save (validation happens in the core).
import type { SettingsPatch, SettingsView } from './bindings';
import { BackendError, type Backend } from './backend';

export class SettingsState {
  view: SettingsView | null = $state(null);
  error: BackendError | null = $state(null);
  saved = $state(false);
  saving = $state(false);

  constructor(private backend: Backend) {}

  async load() {
    try {
      this.view = await this.backend.getSettings();
      this.error = null;
    } catch (err) {
      this.error = BackendError.from(err);
    }
  }

  async save(patch: SettingsPatch) {
    this.saving = true;
    this.saved = false;
    try {
      this.view = await this.backend.updateSettings(patch);
      this.error = null;
      this.saved = true;
    } catch (err) {
      this.error = BackendError.from(err);
    } finally {
      this.saving = false;
    }
  }
}
