import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from './App.svelte';
import { MemoryBackend } from './lib/backend/memory';
import { detailsOf, model } from './lib/fixtures';

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('the library window', () => {
  it('lists each model with its type, format, size and status', async () => {
    const models = [model('acme/tiny-llm'), model('acme/half', { status: 'partial', modelType: 'embedding', format: 'onnx' })];
    render(App, { backend: new MemoryBackend({ models }) });

    const rows = await screen.findAllByTestId('model-row');
    expect(rows).toHaveLength(2);
    expect(rows[0].textContent).toContain('acme/tiny-llm');
    expect(rows[0].textContent).toContain('Text generation');
    expect(rows[0].textContent).toContain('GGUF');
    expect(rows[0].textContent).toContain('2.05 kB');
    expect(rows[0].textContent).toContain('Available');
    expect(rows[1].textContent).toContain('Embedding');
    expect(rows[1].textContent).toContain('Partial');
    expect(screen.getByTestId('model-count').textContent).toBe('2 models');
  });

  it('says the window is ready once, after the library is drawn', async () => {
    const backend = new MemoryBackend({ models: [model('acme/a')] });
    render(App, { backend });
    expect(backend.readyCalls).toBe(0);
    await screen.findAllByTestId('model-row');
    await tick();
    expect(backend.readyCalls).toBe(1);
  });

  it('explains an empty library, and tells an empty filter result apart', async () => {
    const backend = new MemoryBackend({ models: [] });
    render(App, { backend });
    // First start with nothing installed: the window opens on the starter models; the library explains itself.
    await screen.findByText('Starter models');
    await fireEvent.click(screen.getByTestId('library-tab'));
    expect(await screen.findByText('No models yet')).toBeTruthy();
    expect(screen.getByTestId('browse-starters')).toBeTruthy();
    backend.options.models = [model('acme/a')];
    await fireEvent.input(screen.getByTestId('search'), { target: { value: 'zzz' } });
    expect(await screen.findByTestId('no-match')).toBeTruthy();
  });

  it('sends filters and sorting to the core', async () => {
    const backend = new MemoryBackend({ models: [model('acme/a'), model('acme/e', { modelType: 'embedding' })] });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    await fireEvent.change(screen.getByTestId('type-filter'), { target: { value: 'embedding' } });
    await fireEvent.change(screen.getByLabelText('Sort'), { target: { value: 'size-desc' } });
    await tick();
    const last = backend.queries.at(-1)!;
    expect(last).toMatchObject({ modelType: 'embedding', sort: 'size', descending: true });
    expect((await screen.findAllByTestId('model-row')).map((r) => r.dataset.id)).toEqual(['acme/e']);
  });

  it('shows the error message and code, and retries', async () => {
    const backend = new MemoryBackend({ error: { code: 'permission', message: 'cannot read the model cache /x' } });
    render(App, { backend });
    expect((await screen.findByTestId('error-message')).textContent).toBe('cannot read the model cache /x');
    expect(screen.getByText('Error code: permission')).toBeTruthy();
    backend.options = { models: [model('acme/back')] };
    await fireEvent.click(screen.getByText('Try again'));
    expect((await screen.findAllByTestId('model-row'))[0].textContent).toContain('acme/back');
  });

  it('reads the disk again when R is pressed or a model changes', async () => {
    const backend = new MemoryBackend({ models: [model('acme/one')] });
    render(App, { backend });
    await screen.findAllByTestId('model-row');
    backend.options.models = [model('acme/one'), model('acme/two')];
    await fireEvent.keyDown(window, { key: 'r' });
    await screen.findByText('two');
    backend.options.models = [model('acme/three')];
    backend.emitLifecycle({ kind: 'completed', repo: 'acme/three', revision: 'main', downloadId: 1, error: null });
    await screen.findByText('three');
  });
});

describe('model details', () => {
  async function open(backend: MemoryBackend) {
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    return screen.findByTestId('details');
  }

  it('shows facts, the card, revisions with hashes, and lets the user change the type', async () => {
    const m = model('acme/tiny');
    const backend = new MemoryBackend({ models: [m], details: detailsOf(m) });
    const panel = await open(backend);
    await within(panel).findByRole('heading', { name: 'acme/tiny' });
    expect(within(panel).getByTestId('client-name').textContent).toContain('names it acme/tiny');
    expect(panel.textContent).toContain('apache-2.0');
    expect(panel.textContent).toContain('en, fr');
    expect(panel.textContent).toContain('aaaaaaaaaa');
    expect(panel.textContent).toContain('from config.json');
    await fireEvent.change(within(panel).getByTestId('type-select'), { target: { value: 'embedding' } });
    await tick();
    expect(backend.actions).toContain('type acme/tiny embedding');
    await fireEvent.click(within(panel).getByText('Open folder'));
    expect(backend.actions).toContain('open /cache/models--acme--tiny');
  });

  it('verifies, shows damaged files and repairs them', async () => {
    const m = model('acme/tiny');
    const backend = new MemoryBackend({
      models: [m],
      details: detailsOf(m),
      verify: {
        id: 'acme/tiny',
        commit: 'c',
        ok: false,
        bytesChecked: 2048,
        repaired: [],
        files: [{ path: 'model.gguf', blob: 'a'.repeat(64), size: 2000, status: 'corrupt', actual: 'b'.repeat(64) }],
      },
    });
    const panel = await open(backend);
    await fireEvent.click(await within(panel).findByTestId('verify-button'));
    const result = await within(panel).findByTestId('verify-result');
    expect(result.textContent).toContain('1 file is damaged or missing');
    expect(result.textContent).toContain('model.gguf (corrupt)');
    await fireEvent.click(within(result).getByText(/Repair/));
    await tick();
    expect(backend.actions).toEqual(['verify acme/tiny', 'verify acme/tiny repair']);
  });

  it('asks before deleting, saying how much it frees', async () => {
    const m = model('acme/tiny', { size: 4_920_000_000 });
    const backend = new MemoryBackend({ models: [m], details: detailsOf(m) });
    const panel = await open(backend);
    await fireEvent.click(await within(panel).findByTestId('delete-button'));
    const confirm = await within(panel).findByTestId('confirm-delete');
    expect(confirm.textContent).toContain('This frees 4.92 GB');
    expect(backend.actions).toEqual(['dry-delete acme/tiny']);
    await fireEvent.click(within(confirm).getByTestId('confirm-delete-button'));
    await tick();
    expect(backend.actions).toEqual(['dry-delete acme/tiny', 'delete acme/tiny']);
    expect(await screen.findByText('No models yet')).toBeTruthy();
  });
});

describe('activation', () => {
  it('activates from details, shows the active strip, and deactivates', async () => {
    const m = model('acme/llm');
    const backend = new MemoryBackend({ models: [m], details: detailsOf(m) });
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    const button = await screen.findByTestId('activate-button');
    expect(button.textContent?.trim()).toBe('Activate as Text generation');
    await fireEvent.click(button);
    await tick();
    expect(backend.actions).toEqual(['activate acme/llm']);
    expect((await screen.findByTestId('active-strip')).textContent).toContain('Text generation · acme/llm');
    expect((await screen.findAllByTestId('model-row'))[0].textContent).toContain('Active');
    await fireEvent.click(await screen.findByTestId('deactivate-button'));
    await tick();
    expect(backend.actions).toEqual(['activate acme/llm', 'deactivate text-generation']);
    expect(screen.queryByTestId('active-strip')).toBeNull();
  });

  it('shows why a model cannot be activated, and follows changes made outside the window', async () => {
    const m = model('acme/llm');
    const backend = new MemoryBackend({
      models: [m],
      details: detailsOf(m),
      activateError: { code: 'invalid-input', message: 'acme/llm cannot be activated: it is incomplete' },
    });
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    await fireEvent.click(await screen.findByTestId('activate-button'));
    expect((await screen.findByText(/cannot be activated: it is incomplete/)).getAttribute('role')).toBe('alert');

    // `mm activate` in a terminal: the settings file changes, the window follows.
    backend.options.activateError = undefined;
    await backend.activateModel('acme/llm', null);
    backend.emitSettingsChanged();
    expect((await screen.findByTestId('active-strip')).textContent).toContain('acme/llm');

    backend.emitAppError({ code: 'invalid-input', message: 'from the tray' });
    expect((await screen.findByText(/from the tray/)).textContent).toContain('Dismiss');
  });
});

describe('loading', () => {
  it('loads the active model, shows its endpoint and memory beside the estimate, follows a crash, unloads', async () => {
    const m = model('acme/llm');
    const backend = new MemoryBackend({ models: [m], details: detailsOf(m) });
    await backend.activateModel('acme/llm', null);
    backend.actions = [];
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    await fireEvent.click(await screen.findByTestId('load-button'));
    await tick();
    expect(backend.actions).toEqual(['load text-generation']);
    expect((await screen.findByTestId('runtime-endpoint')).textContent).toBe('http://127.0.0.1:8770/v1');
    expect(screen.getByTestId('runtime-state').textContent).toBe('Serving');
    expect(screen.getByTestId('runtime-memory').textContent).toBe('1.10 GB measured · estimate 1.30 GB (-15%)');
    expect(screen.getByTestId('served-mark').textContent).toContain('serving');

    // The runtime crashed; the host restarts it: the window says so.
    const crashed = (await backend.loadedModels())[0];
    backend.emitRuntimeChanged({
      id: crashed.id,
      loaded: { ...crashed, state: 'unhealthy', error: 'llama-server exited (signal: 9); restarting' },
    });
    expect((await screen.findByText(/exited \(signal: 9\); restarting/)).getAttribute('role')).toBe('alert');
    expect(screen.getByTestId('runtime-state').textContent).toBe('Unhealthy');

    await fireEvent.click(screen.getByTestId('unload-button'));
    await tick();
    expect(backend.actions).toEqual(['load text-generation', 'unload text-generation']);
    expect(screen.queryByTestId('runtime-status')).toBeNull();
    expect(await screen.findByTestId('load-button')).toBeTruthy();
  });

  it('says why a load failed', async () => {
    const m = model('acme/llm');
    const backend = new MemoryBackend({
      models: [m],
      details: detailsOf(m),
      loadError: { code: 'not-found', message: 'llama-server was not found on PATH: install llama.cpp' },
    });
    await backend.activateModel('acme/llm', null);
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    await fireEvent.click(await screen.findByTestId('load-button'));
    expect((await screen.findByText(/llama-server was not found on PATH/)).getAttribute('role')).toBe('alert');
    expect((screen.getByTestId('load-button') as HTMLButtonElement).disabled).toBe(false);
  });
});

describe('keyboard', () => {
  it('arrows move between rows, Enter opens one, Escape closes it, / searches, N starts a download', async () => {
    const a = model('acme/a');
    const backend = new MemoryBackend({ models: [a, model('acme/b')], details: detailsOf(a) });
    render(App, { backend });
    const rows = await screen.findAllByTestId('model-row');
    rows[0].focus();
    await fireEvent.keyDown(rows[0], { key: 'ArrowDown' });
    expect(document.activeElement).toBe(rows[1]);
    await fireEvent.keyDown(rows[1], { key: 'ArrowUp' });
    expect(document.activeElement).toBe(rows[0]);
    await fireEvent.keyDown(rows[0], { key: 'Enter' });
    expect(await screen.findByTestId('details')).toBeTruthy();
    await fireEvent.keyDown(window, { key: 'Escape' });
    await tick();
    expect(screen.queryByTestId('details')).toBeNull();
    await fireEvent.keyDown(window, { key: '/' });
    await tick();
    expect(document.activeElement).toBe(screen.getByTestId('search'));
    (document.activeElement as HTMLElement).blur();
    await fireEvent.keyDown(window, { key: 'n' });
    await tick();
    expect(document.activeElement).toBe(await screen.findByTestId('repo-input'));
  });
});
