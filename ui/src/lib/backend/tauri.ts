// The Backend over Tauri's IPC: each method is one Rust command.
import { invoke } from '@tauri-apps/api/core';
import type { CacheScan } from '../bindings';
import { BackendError, type Backend } from './index';

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(command, args);
  } catch (err) {
    throw BackendError.from(err);
  }
}

export const tauriBackend: Backend = {
  listModels: () => call<CacheScan>('list_models'),
};
