import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import { MemoryBackend, defaultSettings, loadedModel } from '../lib/backend/memory';
import { detailsOf, model, storageOf } from '../lib/fixtures';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('storage', () => {
  it('shows each loaded model against the free memory, and pins and unloads it', async () => {
    const loaded = [loadedModel('acme/chat', 'text-generation'), loadedModel('acme/embed', 'embedding', { endpoint: null })];
    const backend = new MemoryBackend({ models: [], storage: storageOf(), loaded });
    render(App, { backend });
    await fireEvent.click(screen.getByTestId('storage-tab'));
    const budget = await screen.findByTestId('memory-budget');
    expect(budget.textContent).toContain('acme/chat');
    expect(budget.textContent).toContain('acme/embed');
    expect(screen.getByText('by name on /v1')).toBeTruthy();
    const [pin] = screen.getAllByTestId('pin-button');
    expect(pin.textContent).toBe('Pin');
    await fireEvent.click(pin);
    await tick();
    expect(backend.actions).toContain('pin acme/chat');
    expect(screen.getAllByTestId('pin-button')[0].textContent).toBe('Unpin');
    await fireEvent.click(screen.getAllByText('Unload')[0]);
    await tick();
    expect(backend.actions).toContain('unload acme/chat');
  });

  it('shows use per model and free space, and cleans up what can be reclaimed', async () => {
    const backend = new MemoryBackend({ models: [], storage: storageOf() });
    render(App, { backend });
    await fireEvent.click(screen.getByTestId('storage-tab'));
    expect((await screen.findByTestId('storage-summary')).textContent).toMatch(
      /Models take 4.92 GB; 50.0 GB free of\s+250 GB on this disk/,
    );
    expect(screen.getByText('acme/small')).toBeTruthy();
    expect(screen.getByText(/700 kB/)).toBeTruthy();
    await fireEvent.click(screen.getByTestId('clean-button'));
    expect((await screen.findByTestId('cleaned')).textContent).toBe('Cleaned up: freed 700 kB.');
    expect(backend.actions).toContain('clean');
  });

  it('shows the machine\'s figures: models by type and source, what is loaded, the folders\' bytes', async () => {
    const models = [model('acme/a'), model('acme/b', { modelType: 'embedding' }), model('local/c.gguf', { source: 'imported' })];
    const backend = new MemoryBackend({ models, storage: storageOf(), loaded: [loadedModel('acme/a', 'text-generation')] });
    render(App, { backend });
    await fireEvent.click(screen.getByTestId('storage-tab'));
    const stats = await screen.findByTestId('stats-panel');
    expect(stats.textContent).toContain('3 models: 2 text-generation · 1 embedding');
    expect(stats.textContent).toContain('2 hugging-face · 1 imported');
    expect(stats.textContent).toContain('1 loaded, 3 requests answered');
  });
});

describe('settings', () => {
  it('saves a change, shows the masked token, and shows the core\'s validation error', async () => {
    const backend = new MemoryBackend({ models: [], settings: { ...defaultSettings(), tokenHint: 'hf_…wxyz' } });
    render(App, { backend });
    await fireEvent.click(screen.getByTestId('settings-tab'));
    const token = (await screen.findByTestId('token-input')) as HTMLInputElement;
    expect(token.placeholder).toBe('Saved: hf_…wxyz (type to replace)');
    expect(token.value).toBe('');

    await fireEvent.input(screen.getByTestId('max-concurrent'), { target: { value: '5' } });
    await fireEvent.click(screen.getByText('Save'));
    await tick();
    const saved = JSON.parse(backend.actions.at(-1)!.replace('settings ', ''));
    expect(saved).toMatchObject({ maxConcurrentDownloads: 5, connectionsPerFile: 16, token: null, bandwidthLimit: 0, verifyOnDownload: true });
    expect(await screen.findByText('Saved.')).toBeTruthy();

    backend.options.settingsError = { code: 'invalid-input', message: 'endpoint must be an http(s) URL such as https://huggingface.co, not "x"' };
    await fireEvent.click(screen.getByText('Save'));
    expect((await screen.findByTestId('settings-error')).textContent).toContain('endpoint must be an http(s) URL');
  });

  it('warns when the settings file was replaced by defaults', async () => {
    const warning = 'The settings file could not be read (EOF); it was saved as /x.corrupt-1 and the defaults are in use.';
    render(App, { backend: new MemoryBackend({ models: [], settings: { ...defaultSettings(), warning } }) });
    await fireEvent.click(screen.getByTestId('settings-tab'));
    expect((await screen.findByTestId('settings-warning')).textContent).toBe(warning);
  });
});

describe('compatibility', () => {
  const hardware = {
    gpus: [{ name: 'RTX 4090', vendor: 'NVIDIA', vramTotal: 24_000_000_000, vramFree: 20_000_000_000, driver: '550.54', cudaVersion: '12.4', computeCapability: '8.9' }],
    nvidiaNote: null,
    ramTotal: 64_000_000_000,
    ramAvailable: 40_000_000_000,
    cpu: { brand: 'AMD Ryzen 9', physicalCores: 16, threads: 32, features: ['avx2', 'avx512f'] },
    os: 'Debian 12',
    diskFree: 1,
    diskTotal: 2,
    probeMs: 12,
  };

  it('the system panel describes the machine', async () => {
    render(App, { backend: new MemoryBackend({ models: [], storage: storageOf(), hardware }) });
    await fireEvent.click(screen.getByTestId('storage-tab'));
    const panel = await screen.findByTestId('system-panel');
    expect(panel.textContent).toContain('AMD Ryzen 9 · 16 cores, 32 threads');
    expect(screen.getByTestId('gpus').textContent).toContain('NVIDIA RTX 4090: 20.0 GB free of 24.0 GB');
    expect(screen.getByTestId('gpus').textContent).toContain('CUDA 12.4');
  });

  it('each library model shows whether it runs here, with the numbers on hover', async () => {
    const { model } = await import('../lib/fixtures');
    const backend = new MemoryBackend({
      models: [model('acme/a'), model('acme/b')],
      fit: {
        'acme/a': { fit: 'fits-gpu', summary: 'Fits on the GPU: needs 5.8 GB of 20.0 GB VRAM', measured: null },
        'acme/b': { fit: 'too-large', summary: 'Too large: needs 90.0 GB', measured: null },
      },
    });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    const badges = await screen.findAllByTestId('fit-badge');
    expect(badges.map((b) => b.textContent)).toEqual(['Fits GPU', 'Too large']);
    expect(badges[0].getAttribute('title')).toBe('Fits on the GPU: needs 5.8 GB of 20.0 GB VRAM');
  });
});

describe('logs and diagnostics', () => {
  it('shows the log folder, opens it, and copies the diagnostics', async () => {
    const backend = new MemoryBackend({ models: [], storage: storageOf() });
    const { Storage } = await import('../lib/storage.svelte');
    const storage = new Storage(backend);
    await storage.load();
    expect(storage.logFolder).toBe('/home/ada/.local/share/dev.model-manager.app/logs');
    await storage.copyDiagnostics();
    expect(backend.actions).toContain('copy diagnostics');
    expect(storage.diagnostics).toContain('Hub token: set');
    expect(storage.diagnosticsNote).toBe('Copied to the clipboard: paste it into the bug report.');
    backend.options.error = { code: 'internal', message: 'the clipboard is not available' };
    await storage.copyDiagnostics();
    expect(storage.diagnosticsNote).toBe('Diagnostics could not be copied: the clipboard is not available');
    expect(storage.diagnostics).toBeNull();

    render(App, { backend });
    await fireEvent.click(screen.getByTestId('storage-tab'));
    expect((await screen.findByTestId('log-folder')).textContent).toContain('dev.model-manager.app/logs');
    await fireEvent.click(screen.getByTestId('open-log-folder'));
    expect(backend.actions).toContain('open logs');
  });
});

describe('machines', () => {
  it('adds a machine that answers, refuses one that does not, and switches the window to it', async () => {
    const backend = new MemoryBackend({ models: [], reachable: ['http://gpu:8765'] });
    render(App, { backend });
    await fireEvent.click(screen.getByTestId('settings-tab'));
    expect(await screen.findByTestId('no-machines')).toBeTruthy();
    expect(screen.queryByTestId('machine-switcher')).toBeNull();

    await fireEvent.input(screen.getByTestId('machine-url'), { target: { value: 'http://nowhere:8765' } });
    await fireEvent.click(screen.getByTestId('add-machine'));
    expect((await screen.findByTestId('machine-error')).textContent).toContain('cannot be reached');

    await fireEvent.input(screen.getByTestId('machine-name'), { target: { value: 'gpu' } });
    await fireEvent.input(screen.getByTestId('machine-url'), { target: { value: 'http://gpu:8765' } });
    await fireEvent.input(screen.getByTestId('machine-token'), { target: { value: 'secret-token' } });
    await fireEvent.click(screen.getByTestId('add-machine'));
    await tick();
    expect(backend.actions).toContain('add machine http://gpu:8765 with a token');
    expect((await screen.findByTestId('machine-list')).textContent).toContain('gpu');
    // The token is not kept in the form.
    expect((screen.getByTestId('machine-token') as HTMLInputElement).value).toBe('');

    // The switcher in the header drives the other machine, and the library is read again from there.
    const switcher = (await screen.findByTestId('machine-switcher')) as HTMLSelectElement;
    const calls = backend.queries.length;
    await fireEvent.change(switcher, { target: { value: 'http://gpu:8765' } });
    await tick();
    expect(backend.actions).toContain('select http://gpu:8765');
    expect(backend.queries.length).toBeGreaterThan(calls);
    await fireEvent.change(switcher, { target: { value: '' } });
    await tick();
    expect(backend.actions).toContain('select this machine');
  });
});

describe('a model on another machine', () => {
  it('says the name this machine serves it under, from the model list of that machine', async () => {
    const m = model('acme/tiny-llm');
    const backend = new MemoryBackend({ models: [m], details: detailsOf(m), reachable: ['http://gpu:8765'] });
    await backend.addMachine('GPU box', 'http://gpu:8765', null);
    render(App, { backend });
    const switcher = (await screen.findByTestId('machine-switcher')) as HTMLSelectElement;
    await fireEvent.change(switcher, { target: { value: 'http://gpu:8765' } });
    await tick();
    await fireEvent.click(screen.getByTestId('library-tab'));
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    const name = await screen.findByTestId('peer-model-name');
    expect(name.textContent).toContain('GPU-box/acme/tiny-llm');

    await fireEvent.change(switcher, { target: { value: '' } });
    await tick();
    expect(screen.queryByTestId('peer-model-name')).toBeNull();
  });
});
