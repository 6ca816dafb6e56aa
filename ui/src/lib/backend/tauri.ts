// The Backend over Tauri's IPC: each method is one Rust command; events come from src-tauri/src/events.rs.
import { invoke } from '@tauri-apps/api/core';
import { listen } from '@tauri-apps/api/event';
import type { CacheScan, DownloadPreview, DownloadProgress, DownloadRequest, ModelLifecycle } from '../bindings';
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
  previewDownload: (request: DownloadRequest) => call<DownloadPreview>('preview_download', { request }),
  startDownload: (request: DownloadRequest) => call<number>('start_download', { request }),
  pauseDownload: (id: number) => call<void>('pause_download', { id }),
  resumeDownload: (id: number) => call<void>('resume_download', { id }),
  cancelDownload: (id: number) => call<void>('cancel_download', { id }),
  listDownloads: () => call<DownloadProgress[]>('list_downloads'),
  onDownloadProgress: (handler) => listen<DownloadProgress>('download-progress', (e) => handler(e.payload)),
  onModelLifecycle: (handler) => listen<ModelLifecycle>('model-lifecycle', (e) => handler(e.payload)),
};
