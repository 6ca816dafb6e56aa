import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from './App.svelte';
import { MemoryBackend, emptyScan } from './lib/backend/memory';
import { repo, scanOf } from './lib/fixtures';

describe('the library window', () => {
  it('lists each cached model with its revision, size and status', async () => {
    const partial = repo('acme/half', { status: 'partial' });
    partial.revisions[0] = { ...partial.revisions[0], status: 'partial', missing: ['b.bin'] };
    render(App, { backend: new MemoryBackend({ scan: scanOf(repo('acme/tiny-llm'), partial) }) });

    const rows = await screen.findAllByTestId('model-row');
    expect(rows).toHaveLength(2);
    expect(rows[0].textContent).toContain('acme/tiny-llm');
    expect(rows[0].textContent).toContain('main');
    expect(rows[0].textContent).toContain('2.05 kB');
    expect(rows[0].textContent).toContain('Complete');
    expect(rows[1].textContent).toContain('Partial · 1 missing');
    expect(screen.getByTestId('model-count').textContent).toBe('2 repos');
  });

  it('explains an empty or missing cache', async () => {
    render(App, { backend: new MemoryBackend({ scan: { ...emptyScan('/tmp/hub'), exists: false } }) });
    expect(await screen.findByText('No models yet')).toBeTruthy();
    expect(screen.getByText(/does not exist yet/)).toBeTruthy();
    expect(screen.queryAllByTestId('model-row')).toHaveLength(0);
  });

  it('shows the error message and code, and retries', async () => {
    const backend = new MemoryBackend({ error: { code: 'permission', message: 'cannot read the model cache /x' } });
    render(App, { backend });
    expect((await screen.findByTestId('error-message')).textContent).toBe('cannot read the model cache /x');
    expect(screen.getByText('Error code: permission')).toBeTruthy();

    backend.options = { scan: scanOf(repo('acme/back')) };
    await fireEvent.click(screen.getByText('Try again'));
    expect((await screen.findAllByTestId('model-row'))[0].textContent).toContain('acme/back');
  });

  it('rescans when R is pressed', async () => {
    const backend = new MemoryBackend({ scan: scanOf(repo('acme/one')) });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    backend.options = { scan: scanOf(repo('acme/one'), repo('acme/two')) };
    await fireEvent.keyDown(window, { key: 'r' });
    await screen.findByText('acme/two');
    expect(backend.calls).toBe(2);
  });

  it('lists cache entries it could not read', async () => {
    const scan = scanOf(repo('acme/ok'));
    scan.problems = [{ path: '/cache/junk', message: 'not a Hugging Face cache entry' }];
    render(App, { backend: new MemoryBackend({ scan }) });
    expect(await screen.findByText('1 entry in the cache could not be read')).toBeTruthy();
  });
});
