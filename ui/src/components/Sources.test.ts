import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import DownloadsView from './DownloadsView.svelte';
import { DownloadList, checksumOf, isDirectUrl } from '../lib/downloads.svelte';
import { MemoryBackend } from '../lib/backend/memory';
import { model } from '../lib/fixtures';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('other sources', () => {
  it('shows the library once a file was imported, whatever the view', async () => {
    const backend = new MemoryBackend({
      models: [model('acme/a')],
      importOutcome: (path) => ({ path, status: 'imported', id: 'local/b.gguf', error: null }),
    });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    await fireEvent.click(screen.getByTestId('downloads-tab'));
    expect(screen.queryAllByTestId('model-row')).toHaveLength(0);
    await backend.importPaths(['/m/b.gguf']);
    await tick();
    expect(screen.getAllByTestId('model-row').length).toBeGreaterThan(0);
  });

  it('says whether a dropped file is being checked or copied, with its bytes', async () => {
    const backend = new MemoryBackend({ models: [model('acme/a')] });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    backend.emitImportProgress({ path: '/m/a.gguf', phase: 'hashing', bytesDone: 1_500_000_000, bytesTotal: 4_000_000_000, index: 1, count: 2 });
    await tick();
    expect(screen.getByTestId('import-progress').textContent).toContain('Checking 1 of 2: a.gguf — 1.50 GB of 4.00 GB');
    backend.emitImportProgress({ path: '/m/big', phase: 'copying', bytesDone: 2_000_000, bytesTotal: 8_000_000_000, index: 2, count: 2 });
    await tick();
    const strip = screen.getByTestId('import-progress');
    expect(strip.textContent).toContain('Copying 2 of 2: big — 2.00 MB of 8.00 GB');
    expect(strip.querySelector('progress')?.value).toBe(2_000_000);
    // Cancel asks the backend to stop; the outcomes that follow say what was left.
    await fireEvent.click(screen.getByTestId('import-cancel'));
    expect(backend.actions).toContain('cancel imports');
  });

  it('a cancelled batch says how many were cancelled, each with its reason', async () => {
    const backend = new MemoryBackend({
      models: [model('acme/a')],
      importOutcome: (path) =>
        path.endsWith('a.gguf')
          ? { path, status: 'imported', id: 'local/a.gguf', error: null }
          : { path, status: 'cancelled', id: null, error: { code: 'cancelled', message: `the import of ${path} was cancelled: nothing of it was added` } },
    });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    await backend.importPaths(['/m/a.gguf', '/m/big.gguf', '/m/c.gguf']);
    await tick();
    expect(screen.getByTestId('import-results').textContent).toContain('1 imported, 2 cancelled');
    const rows = screen.getAllByTestId('import-outcome');
    expect(rows.map((r) => r.dataset.status)).toEqual(['imported', 'cancelled', 'cancelled']);
    expect(rows[1].textContent).toContain('big.gguf was cancelled: nothing of it was added');
  });

  it('shows a drop target while files hover, then what became of each dropped file', async () => {
    const backend = new MemoryBackend({
      models: [model('acme/a')],
      importOutcome: (path) =>
        path.endsWith('.txt')
          ? { path, status: 'failed', id: null, error: { code: 'invalid-input', message: `${path} is not a model: it is not a model file this app knows` } }
          : { path, status: 'imported', id: `local/${path.split('/').pop()}`, error: null },
    });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    backend.emitDropHover(true);
    await tick();
    expect(screen.getByTestId('drop-target').textContent).toContain('Drop model files or folders');
    // The same file twice in one drop still renders a row each.
    backend.emitDrop(['/home/u/m.gguf', '/home/u/notes.txt', '/home/u/m.gguf']);
    await tick();
    expect(screen.queryByTestId('drop-target')).toBeNull();
    const outcomes = await screen.findAllByTestId('import-outcome');
    expect(outcomes.map((o) => o.dataset.status)).toEqual(['imported', 'failed', 'imported']);
    expect(outcomes[0].textContent).toContain('added as local/m.gguf');
    expect(outcomes[1].textContent).toContain('notes.txt is not a model');
    expect(screen.getByTestId('import-results').textContent).toContain('2 imported, 1 not imported');
    await fireEvent.click(screen.getByText('Dismiss'));
    expect(screen.queryByTestId('import-results')).toBeNull();
  });

  it('labels models from other sources in the library', async () => {
    const models = [model('local/tiny.gguf', { source: 'imported', displayName: 'tiny.gguf' }), model('ollama/llama3.2:1b', { source: 'ollama', displayName: 'llama3.2:1b' })];
    render(App, { backend: new MemoryBackend({ models }) });
    const rows = await screen.findAllByTestId('model-row');
    expect(rows.map((r) => r.querySelector('[data-testid="source"]')?.textContent)).toEqual(['imported', 'Ollama']);
  });

  it('downloads a file URL with a checksum, and tells a bad checksum at once', async () => {
    const backend = new MemoryBackend();
    const downloads = new DownloadList(backend);
    render(DownloadsView, { downloads });
    await fireEvent.input(screen.getByTestId('repo-input'), { target: { value: 'https://files.test/models/tiny.gguf' } });
    expect(screen.queryByTestId('preview-button')).toBeNull();
    await fireEvent.input(screen.getByTestId('checksum-input'), { target: { value: 'abc' } });
    expect((screen.getByTestId('url-download-button') as HTMLButtonElement).disabled).toBe(true);
    const sha = 'a'.repeat(64);
    await fireEvent.input(screen.getByTestId('checksum-input'), { target: { value: sha.toUpperCase() } });
    await fireEvent.click(screen.getByTestId('url-download-button'));
    await tick();
    expect(backend.started).toEqual([
      { repo: '', revision: null, include: [], exclude: [], files: [], url: { url: 'https://files.test/models/tiny.gguf', sha256: sha, md5: null, name: null }, evict: false },
    ]);
  });

  it('pulls from Ollama when it runs, and says quietly when it does not', async () => {
    const up = new MemoryBackend({ ollama: { host: 'http://127.0.0.1:11434', available: true } });
    const { unmount } = render(DownloadsView, { downloads: new DownloadList(up) });
    await fireEvent.input(await screen.findByTestId('ollama-input'), { target: { value: 'llama3.2:1b' } });
    await fireEvent.click(screen.getByTestId('ollama-pull'));
    await tick();
    expect(up.pulled).toEqual(['llama3.2:1b']);
    unmount();
    render(DownloadsView, { downloads: new DownloadList(new MemoryBackend()) });
    expect((await screen.findByTestId('ollama-status')).textContent).toContain('not running at http://127.0.0.1:11434');
  });

  it('tells file links from hub pages and checksums apart', () => {
    expect(isDirectUrl('https://huggingface.co/acme/tiny')).toBe(false);
    expect(isDirectUrl('acme/tiny')).toBe(false);
    expect(isDirectUrl('http://lan.box:8080/x.gguf')).toBe(true);
    expect(checksumOf('')).toEqual({ sha256: null, md5: null });
    expect(checksumOf('D41D8CD98F00B204E9800998ECF8427E')).toEqual({ sha256: null, md5: 'd41d8cd98f00b204e9800998ecf8427e' });
    expect(checksumOf('xyz')).toBeNull();
  });
});
