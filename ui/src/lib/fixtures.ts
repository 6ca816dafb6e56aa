// Library data for tests, shaped exactly as the Rust side returns it.
import type { LibraryModel, ModelDetails, StorageReport } from './bindings';

export const COMMIT = '0123456789abcdef0123456789abcdef01234567';

export function model(id: string, overrides: Partial<LibraryModel> = {}): LibraryModel {
  return {
    id,
    displayName: id.split('/').pop()!,
    source: 'hugging-face',
    modelType: 'text-generation',
    typeOrigin: 'config',
    status: 'available',
    revision: 'main',
    commit: COMMIT,
    revisions: 1,
    files: 2,
    size: 2048,
    format: 'gguf',
    downloadedAt: 1_700_000_000,
    lastUsed: null,
    path: `/cache/models--${id.replace('/', '--')}`,
    pipelineTag: null,
    libraryName: null,
    architectures: ['LlamaForCausalLM'],
    tags: [],
    gated: false,
    error: null,
    downloadId: null,
    ...overrides,
  };
}

export function detailsOf(m: LibraryModel): ModelDetails {
  return {
    model: m,
    card: { license: 'apache-2.0', language: ['en', 'fr'] },
    revisions: [
      {
        commit: COMMIT,
        refs: ['main'],
        status: 'complete',
        files: [
          { path: 'config.json', size: 48, blob: 'c'.repeat(40) },
          { path: 'model.gguf', size: 2000, blob: 'a'.repeat(64) },
        ],
        missing: [],
        sizeOnDisk: 2048,
        lastModified: 1_700_000_000,
      },
    ],
  };
}

export function storageOf(overrides: Partial<StorageReport> = {}): StorageReport {
  return {
    cacheDir: '/cache',
    cacheBytes: 4_920_000_000,
    diskFree: 50_000_000_000,
    diskTotal: 250_000_000_000,
    models: [
      { id: 'acme/big', kind: 'model', bytes: 4_900_000_000 },
      { id: 'acme/small', kind: 'model', bytes: 20_000_000 },
    ],
    orphanBlobs: [{ repo: 'acme/big', path: '/cache/models--acme--big/blobs/ff', bytes: 700_000 }],
    partialDownloads: [],
    reclaimableBytes: 700_000,
    ...overrides,
  };
}
