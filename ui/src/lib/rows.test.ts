import { expect, it } from 'vitest';
import { COMMIT, repo, scanOf } from './fixtures';
import { toRows } from './rows';

it('makes one row per revision with its refs', () => {
  const r = repo('acme/tiny');
  r.revisions.push({ ...r.revisions[0], commit: 'f'.repeat(40), refs: [], sizeOnDisk: 10 });
  const rows = toRows(scanOf(r));
  expect(rows.map((row) => [row.repoId, row.refs, row.commit, row.size])).toEqual([
    ['acme/tiny', 'main', COMMIT, 2048],
    ['acme/tiny', '', 'f'.repeat(40), 10],
  ]);
});

it('keeps a repo with no revision yet, and marks interrupted downloads partial', () => {
  const empty = repo('acme/starting', { revisions: [], status: 'partial', sizeOnDisk: 300 });
  const interrupted = repo('acme/interrupted', { incomplete: [{ blob: 'ffff', bytes: 5 }] });
  const rows = toRows(scanOf(empty, interrupted));
  expect(rows[0]).toMatchObject({ repoId: 'acme/starting', commit: '', files: 0, size: 300, status: 'partial' });
  expect(rows[1]).toMatchObject({ repoId: 'acme/interrupted', status: 'partial' });
});
