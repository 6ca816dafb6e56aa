// A model's load settings as the details panel edits them: what is kept, the draft being typed, and the estimate
// for the draft (asked again a moment after each change, so it follows the typing). Saving keeps the draft on the
// machine the window drives; a loaded model restarts with it on its next request.
import type { CompatReport, LoadSettings } from './bindings';
import { LOAD_SETTINGS } from './bindings';
import { emptyLoadSettings, fieldText, parseField } from './loadSettingsText';
import { BackendError, type Backend } from './backend';

export class LoadSettingsForm {
  readonly rows = LOAD_SETTINGS;
  id: string | null = $state(null);
  kept: LoadSettings = $state(emptyLoadSettings());
  draft: LoadSettings = $state(emptyLoadSettings());
  /** What each field holds as typed (a number half typed stays as it is). */
  texts: Record<string, string> = $state({});
  /** Fields whose text is not a value, with why. */
  problems: Record<string, string> = $state({});
  estimate: CompatReport | null = $state(null);
  error: BackendError | null = $state(null);
  saving = $state(false);
  saved = $state(false);
  dirty = $derived(JSON.stringify(this.draft) !== JSON.stringify(this.kept));
  private timer: ReturnType<typeof setTimeout> | null = null;
  private asked = 0;
  /** Whether a field was typed in since the form was opened: what arrives later does not overwrite it. */
  private touched = false;

  constructor(
    private backend: Backend,
    private delay = 250,
  ) {}

  async open(id: string): Promise<void> {
    if (this.id !== id) this.touched = false;
    this.id = id;
    this.error = null;
    this.saved = false;
    this.estimate = null;
    try {
      const kept = await this.backend.loadSettings(id);
      if (this.id !== id) return;
      if (this.touched) {
        // Typed in meanwhile: the kept settings are what Save compares with; the typing stays.
        this.kept = kept;
      } else {
        this.show(kept);
      }
      this.refresh(0);
    } catch (err) {
      if (this.id === id) this.error = BackendError.from(err);
    }
  }

  private show(kept: LoadSettings) {
    this.kept = kept;
    this.draft = structuredClone($state.snapshot(kept)) as LoadSettings;
    this.texts = Object.fromEntries(this.rows.map((r) => [r.key, fieldText(kept, r)]));
    this.problems = {};
  }

  /** A field typed: the draft follows when the text is a value, and the estimate a moment later. */
  edit(key: string, text: string) {
    const row = this.rows.find((r) => r.key === key);
    if (!row) return;
    this.texts[key] = text;
    this.saved = false;
    this.touched = true;
    const parsed = parseField(row, text);
    if ('problem' in parsed) {
      this.problems[key] = parsed.problem;
      return;
    }
    delete this.problems[key];
    (this.draft as Record<string, unknown>)[key] = parsed.value;
    this.refresh(this.delay);
  }

  reset() {
    this.touched = true;
    const defaults = emptyLoadSettings();
    this.draft = defaults;
    this.texts = Object.fromEntries(this.rows.map((r) => [r.key, fieldText(defaults, r)]));
    this.problems = {};
    this.refresh(0);
  }

  private refresh(delay: number) {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.ask(), delay);
  }

  private async ask() {
    const id = this.id;
    if (!id) return;
    const ticket = ++this.asked;
    try {
      const draft = $state.snapshot(this.draft) as LoadSettings;
      const estimate = await this.backend.checkCompatibility(id, null, draft);
      if (ticket === this.asked) this.estimate = estimate;
    } catch {
      // A model whose weights cannot be read has no estimate; the form still works.
      if (ticket === this.asked) this.estimate = null;
    }
  }

  async save(): Promise<void> {
    if (!this.id || Object.keys(this.problems).length) return;
    this.saving = true;
    this.error = null;
    try {
      const kept = await this.backend.keepLoadSettings(this.id, $state.snapshot(this.draft) as LoadSettings);
      this.show(kept);
      this.touched = false;
      this.saved = true;
    } catch (err) {
      this.error = BackendError.from(err);
    } finally {
      this.saving = false;
    }
  }
}
