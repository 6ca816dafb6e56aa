// The library table's rows: one per cached revision, derived from a cache scan.
import type { CacheScan, CacheStatus, RepoKind } from './bindings';

export interface ModelRow {
  key: string;
  repoId: string;
  kind: RepoKind;
  /** `main` or `main, v1`; empty when no ref names the commit. */
  refs: string;
  commit: string;
  files: number;
  size: number;
  status: CacheStatus;
  missing: number;
  lastModified: number | null;
  path: string;
}

export function toRows(scan: CacheScan): ModelRow[] {
  return scan.repos.flatMap((repo) => {
    const base = { repoId: repo.repoId, kind: repo.kind, path: repo.path };
    if (repo.revisions.length === 0) {
      return [{ ...base, key: repo.path, refs: '', commit: '', files: 0, size: repo.sizeOnDisk,
        status: repo.status, missing: 0, lastModified: repo.lastModified }];
    }
    return repo.revisions.map((rev) => ({
      ...base,
      key: `${repo.path}@${rev.commit}`,
      refs: rev.refs.join(', '),
      commit: rev.commit,
      files: rev.files.length,
      size: rev.sizeOnDisk,
      // An interrupted download leaves the repo partial even when each snapshot is whole.
      status: repo.incomplete.length > 0 ? 'partial' : rev.status,
      missing: rev.missing.length,
      lastModified: rev.lastModified,
    }));
  });
}
