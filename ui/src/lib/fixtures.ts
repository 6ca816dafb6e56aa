// Library data for tests, shaped exactly as the Rust side returns it.
import type {
  CatalogEntry,
  CompatReport,
  FileCompat,
  Fit,
  LibraryModel,
  ModelDetails,
  RepoDetails,
  SearchHit,
  StorageReport,
} from './bindings';

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
    adapter: null,
    adapters: [],
    pinned: false,
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
    detachedRevisions: [],
    reclaimableBytes: 700_000,
    ...overrides,
  };
}

export function hit(id: string, overrides: Partial<SearchHit> = {}): SearchHit {
  return {
    id,
    author: id.split('/')[0],
    task: 'text-generation',
    library: 'gguf',
    downloads: 12_500,
    likes: 42,
    lastModified: '2026-06-30T12:00:00.000Z',
    gated: false,
    installed: false,
    ...overrides,
  };
}

/** A GGUF repo with two quantisations and a card as the core renders it (already made safe). */
export function repoDetails(id: string, overrides: Partial<RepoDetails> = {}): RepoDetails {
  const name = id.split('/').pop()!;
  const q4 = `${name}.Q4_K_M.gguf`;
  const q8 = `${name}.Q8_0.gguf`;
  return {
    id,
    revision: 'main',
    commit: COMMIT,
    gated: false,
    task: 'text-generation',
    library: 'gguf',
    license: 'apache-2.0',
    tags: ['gguf'],
    files: [
      { path: 'README.md', size: 2_000, installed: false },
      { path: q4, size: 800_000_000, installed: false },
      { path: q8, size: 1_600_000_000, installed: false },
    ],
    totalSize: 2_400_002_000,
    quantisations: [
      { name: 'Q4_K_M', files: [q4], size: 800_000_000 },
      { name: 'Q8_0', files: [q8], size: 1_600_000_000 },
    ],
    cardHtml: '<h1>Tiny</h1>\n<p>Read <a href="https://hub.test/docs">the docs</a>.</p>\n',
    cardNote: null,
    pageUrl: `https://hub.test/${id}`,
    diskFree: 100_000_000_000,
    installed: false,
    ...overrides,
  };
}

function fileCompat(file: string | null, fit: Fit, summary: string): FileCompat {
  const verdict = { fit, gpuLayers: null, layers: 16, gpu: null, vram: 0, ram: 16e9, summary };
  return {
    file,
    fileBytes: 1,
    requirements: {
      weightsBytes: 1, kvCacheBytes: 0, overheadBytes: 0, totalBytes: 1, parameters: null, layers: 16, kvHeads: null,
      headDim: null, context: 4096, architecture: 'llama', quantisation: null,
    } as unknown as FileCompat['requirements'],
    now: verdict,
    best: verdict,
  };
}

export function compatOf(entries: Array<[string | null, Fit, string]>): CompatReport {
  return { model: 'x', entries: entries.map(([f, fit, s]) => fileCompat(f, fit, s)), downloadBytes: 0, diskFree: 1e11 };
}

export function catalogEntry(id: string, overrides: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    id,
    name: id.split('/').pop()!,
    type: 'text-generation',
    files: [`${id.split('/').pop()}.gguf`],
    size: 500_000_000,
    purpose: 'A small model for tests.',
    license: 'mit',
    installed: false,
    ...overrides,
  };
}
