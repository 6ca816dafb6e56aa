// The one door to the Rust side. Components and state never import @tauri-apps/api; they take a Backend, which
// is the Tauri implementation in the app and the in-memory one in tests.
import type { CacheScan, ErrorCode, ErrorPayload } from '../bindings';

export interface Backend {
  /** Every repo in the Hugging Face cache, with revisions, files, sizes and status. */
  listModels(): Promise<CacheScan>;
}

/** A failed command: the code to branch on and the message to show. */
export class BackendError extends Error implements ErrorPayload {
  code: ErrorCode;
  constructor(payload: ErrorPayload) {
    super(payload.message);
    this.name = 'BackendError';
    this.code = payload.code;
  }

  /** Whatever a command threw, as a BackendError: the Rust side rejects with an ErrorPayload. */
  static from(err: unknown): BackendError {
    if (err instanceof BackendError) return err;
    if (typeof err === 'object' && err !== null && 'code' in err && 'message' in err) {
      return new BackendError(err as ErrorPayload);
    }
    return new BackendError({ code: 'internal', message: String(err) });
  }
}
