// Cache scans for tests, shaped exactly as the Rust side returns them.
import type { CacheScan, CachedRepo } from './bindings';

export const COMMIT = '0123456789abcdef0123456789abcdef01234567';

export function repo(repoId: string, overrides: Partial<CachedRepo> = {}): CachedRepo {
  return {
    repoId,
    kind: 'model',
    path: `/cache/models--${repoId.replace('/', '--')}`,
    status: 'complete',
    sizeOnDisk: 2048,
    lastModified: 1_700_000_000,
    incomplete: [],
    revisions: [
      {
        commit: COMMIT,
        refs: ['main'],
        status: 'complete',
        files: [{ path: 'model.gguf', size: 2048, blob: 'aaaa' }],
        missing: [],
        sizeOnDisk: 2048,
        lastModified: 1_700_000_000,
      },
    ],
    ...overrides,
  };
}

export function scanOf(...repos: CachedRepo[]): CacheScan {
  return {
    cacheDir: '/cache',
    exists: true,
    repos,
    problems: [],
    sizeOnDisk: repos.reduce((sum, r) => sum + r.sizeOnDisk, 0),
  };
}
