import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import type { DownloadPreview, DownloadProgress } from '../lib/bindings';
import { MemoryBackend } from '../lib/backend/memory';
import { parseGlobs } from '../lib/downloads.svelte';

const preview: DownloadPreview = {
  repo: 'acme/tiny',
  revision: 'main',
  commit: '0123456789abcdef0123456789abcdef01234567',
  files: [
    { path: 'config.json', size: 120, present: true },
    { path: 'model.gguf', size: 4_920_000_000, present: false },
  ],
  bytesTotal: 4_920_000_120,
  bytesToDownload: 4_920_000_000,
  freeSpace: 50_000_000_000,
  room: null,
};

const progress = (over: Partial<DownloadProgress> = {}): DownloadProgress => ({
  id: 1,
  repo: 'acme/tiny',
  revision: 'main',
  commit: preview.commit,
  state: 'downloading',
  bytesDone: 1_230_000_000,
  bytesTotal: 4_920_000_120,
  filesDone: 1,
  filesTotal: 2,
  bytesPerSecond: 85_300_000,
  etaSeconds: 44,
  error: null,
  transport: null,
  ...over,
});

async function openDownloads(backend: MemoryBackend) {
  render(App, { backend });
  await fireEvent.click(screen.getByTestId('downloads-tab'));
}

describe('the downloads view', () => {
  it('previews a repo with its files, sizes and free space, then starts it', async () => {
    const backend = new MemoryBackend({ preview });
    await openDownloads(backend);
    expect(screen.getByText('No downloads yet')).toBeTruthy();

    await fireEvent.input(screen.getByTestId('repo-input'), { target: { value: ' https://huggingface.co/acme/tiny ' } });
    await fireEvent.input(screen.getByTestId('include-input'), { target: { value: '*.json, *.gguf' } });
    await fireEvent.click(screen.getByTestId('preview-button'));

    expect((await screen.findByTestId('preview-total')).textContent).toBe('2 files · 4.92 GB');
    expect(screen.getByText('cached')).toBeTruthy();
    expect(screen.getByText(/4.92 GB to download · 50.0 GB free/)).toBeTruthy();

    await fireEvent.click(screen.getByTestId('download-button'));
    expect(backend.started).toEqual([
      { repo: 'https://huggingface.co/acme/tiny', revision: null, include: ['*.json', '*.gguf'], exclude: [], files: [], url: null, evict: false },
    ]);
    expect(screen.queryByTestId('preview')).toBeNull();
  });

  it('refuses to start when the disk is too small, and shows lookup errors', async () => {
    const need = 4_919_999_000;
    const room = { needBytes: need, why: 'the free disk space', evict: [], shortfall: need };
    const backend = new MemoryBackend({ preview: { ...preview, freeSpace: 1_000, room } });
    await openDownloads(backend);
    await fireEvent.input(screen.getByTestId('repo-input'), { target: { value: 'acme/tiny' } });
    await fireEvent.click(screen.getByTestId('preview-button'));
    expect(await screen.findByText(/not enough room/)).toBeTruthy();
    expect(screen.getByTestId('preview-room').textContent).toContain('Removing every model nobody uses would free only 0 B');
    expect((screen.getByTestId('download-button') as HTMLButtonElement).disabled).toBe(true);

    backend.options.preview = undefined;
    await fireEvent.click(screen.getByTestId('preview-button'));
    expect((await screen.findByTestId('preview-error')).textContent).toBe('acme/tiny was not found');
  });

  it('past the storage limit, names what would be removed and downloads only once that is agreed', async () => {
    const evict = [{ id: 'acme/old', bytes: 5_000_000_000, lastUsed: 1_000 }];
    const room = { needBytes: 1_000_000_000, why: 'storageLimit', evict, shortfall: 0 };
    const backend = new MemoryBackend({ preview: { ...preview, room } });
    await openDownloads(backend);
    await fireEvent.input(screen.getByTestId('repo-input'), { target: { value: 'acme/tiny' } });
    await fireEvent.click(screen.getByTestId('preview-button'));
    const box = await screen.findByTestId('preview-room');
    expect(box.textContent).toContain('It needs 1.00 GB more room (storageLimit)');
    expect(screen.getByTestId('evict-row').textContent).toContain('acme/old 5.00 GB · last used');
    const button = screen.getByTestId('download-button') as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    await fireEvent.click(screen.getByTestId('evict-consent'));
    expect(button.disabled).toBe(false);
    await fireEvent.click(button);
    await Promise.resolve();
    expect(backend.started.map((r) => [r.repo, r.evict])).toEqual([['acme/tiny', true]]);
  });

  it('shows live progress from events, with speed and time left, and its controls', async () => {
    const backend = new MemoryBackend();
    await openDownloads(backend);
    await Promise.resolve();
    backend.emitProgress(progress());
    const row = await screen.findByTestId('download-row');
    expect(row.textContent).toContain('1.23 GB / 4.92 GB · 24%');
    expect(row.textContent).toContain('85.3 MB/s');
    expect(row.textContent).toContain('44 s left');
    expect(screen.queryByTestId('download-transport')).toBeNull();
    backend.emitProgress(progress({ transport: 'Xet' }));
    expect((await screen.findByTestId('download-transport')).textContent).toBe('via Xet');
    expect(screen.getByRole('progressbar').getAttribute('aria-valuenow')).toBe('24');
    expect(screen.getByTestId('downloads-tab').textContent).toContain('1');

    await fireEvent.click(screen.getByLabelText('Pause acme/tiny'));
    backend.emitProgress(progress({ state: 'paused', bytesPerSecond: 0, etaSeconds: null }));
    await fireEvent.click(await screen.findByLabelText('Resume acme/tiny'));
    await fireEvent.click(screen.getByLabelText('Cancel acme/tiny'));
    expect(backend.actions).toEqual(['pause 1', 'resume 1', 'cancel 1']);

    backend.emitProgress(progress({ state: 'failed', error: { code: 'checksum-mismatch', message: 'model.gguf failed verification' } }));
    expect((await screen.findByRole('alert')).textContent).toBe('model.gguf failed verification');
  });
});

it('the preview shows whether each quantisation runs here', async () => {
  const requirements = {
    format: 'gguf', architecture: 'llama', parameters: 7_000_000_000, precision: 'Q4_K_M', weightsBytes: 4_000_000_000,
    layers: 32, maxContext: 32768, context: 8192, kvHeads: 8, headDim: 128, kvCacheType: 'f16' as const, kvCacheBytes: 1, computeBytes: 1, totalBytes: 4_000_000_002,
  };
  const verdict = (fit: 'fits-gpu' | 'too-large', summary: string) => ({ fit, gpuLayers: null, layers: 32, gpu: null, vram: 0, ram: 0, summary });
  const backend = new MemoryBackend({
    preview: { ...preview, files: [{ path: 'q4.gguf', size: 4e9, present: false }, { path: 'f16.gguf', size: 14e9, present: false }] },
    compat: {
      model: 'acme/tiny', downloadBytes: 14e9, diskFree: 5e10,
      entries: [
        { file: 'q4.gguf', fileBytes: 4e9, requirements, now: verdict('fits-gpu', 'Fits on the GPU'), best: verdict('fits-gpu', '') },
        { file: 'f16.gguf', fileBytes: 14e9, requirements, now: verdict('too-large', 'Too large: needs 15 GB'), best: verdict('too-large', '') },
      ],
    },
  });
  await openDownloads(backend);
  await fireEvent.input(screen.getByTestId('repo-input'), { target: { value: 'acme/tiny' } });
  await fireEvent.click(screen.getByTestId('preview-button'));
  const badges = await screen.findAllByTestId('fit-badge');
  expect(badges.map((b) => [b.textContent, b.getAttribute('title')])).toEqual([
    ['Fits GPU', 'Fits on the GPU'],
    ['Too large', 'Too large: needs 15 GB'],
  ]);
});

it('splits globs on commas and spaces', () => {
  expect(parseGlobs(' *.json, *Q4_K_M*  onnx/ ,')).toEqual(['*.json', '*Q4_K_M*', 'onnx/']);
  expect(parseGlobs('')).toEqual([]);
});
