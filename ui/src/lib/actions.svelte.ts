// What a state class needs to run a user's action: the action's error, shown until the next one starts.
import { BackendError } from './backend';

export class Actions {
  actionError: BackendError | null = $state(null);

  protected async act(action: () => Promise<unknown>): Promise<void> {
    this.actionError = null;
    try {
      await action();
    } catch (err) {
      this.actionError = BackendError.from(err);
    }
  }
}
