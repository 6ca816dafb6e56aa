import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import { MemoryBackend } from '../lib/backend/memory';
import type { RuntimeBuild } from '../lib/bindings';

const build = (name: string, over: Partial<RuntimeBuild> = {}): RuntimeBuild => ({
  name,
  path: `/data/runtimes/llama.cpp/${name}/build/bin/llama-server`,
  origin: 'managed',
  version: '6543 (a1b2c3d)',
  backend: 'cpu',
  devices: [],
  release: name.split('-')[0],
  sha256: 'ab'.repeat(32),
  error: null,
  ...over,
});

async function openSettings(backend: MemoryBackend) {
  render(App, { backend });
  await fireEvent.click(await screen.findByRole('button', { name: /Settings/ }));
  return screen.findByTestId('runtimes');
}

describe('Settings → Runtimes', () => {
  it('on a machine with none, gets llama.cpp with its progress and says it loads models now', async () => {
    const backend = new MemoryBackend({ models: [], gettable: build('b6000-cpu') });
    const panel = await openSettings(backend);
    await within(panel).findByTestId('no-runtime');
    await fireEvent.click(within(panel).getByTestId('get-runtime'));
    expect((await within(panel).findByTestId('get-runtime')).textContent).toContain('Getting llama.cpp');
    await within(panel).findByTestId('runtime-got');
    expect(within(panel).getByTestId('runtime-got').textContent).toBe('b6000-cpu (6543 (a1b2c3d)) loads models now.');
    const rows = within(panel).getAllByTestId('runtime-row');
    expect(rows).toHaveLength(1);
    expect(rows[0].textContent).toContain('●');
    expect(backend.actions).toContain('get runtime');
  });

  it('uses another build, rolls back, removes one, and shows a failed get', async () => {
    const old = build('b5000-cpu');
    const newer = build('b6000-cuda', { backend: 'cuda', devices: ['CUDA0: NVIDIA H100'] });
    const backend = new MemoryBackend({
      models: [],
      runtimes: { builds: [newer, old], default: newer.path, previous: null, releases: 'https://example.test/releases' },
    });
    const panel = await openSettings(backend);
    await within(panel).findAllByTestId('runtime-row');
    expect(panel.textContent).toContain('CUDA0: NVIDIA H100');
    expect(within(panel).queryByTestId('rollback-runtime')).toBeNull();
    const oldRow = () => within(panel).getAllByTestId('runtime-row')[1];
    await fireEvent.click(within(oldRow()).getByText('Use'));
    await within(panel).findByTestId('rollback-runtime');
    expect(oldRow().textContent).toContain('●');
    await fireEvent.click(within(panel).getByTestId('rollback-runtime'));
    await within(within(panel).getAllByTestId('runtime-row')[0]).findByText('●');
    await fireEvent.click(within(oldRow()).getByText('Remove'));
    await waitFor(() => expect(within(panel).getAllByTestId('runtime-row')).toHaveLength(1));
    expect(backend.actions).toEqual(['use runtime b5000-cpu', 'rollback runtime', 'remove runtime b5000-cpu']);

    backend.options.gettable = build('b7000-cpu');
    backend.options.runtimeError = { code: 'checksum-mismatch', message: 'llama-b7000-bin-ubuntu-x64.tar.gz is not what the release lists' };
    await fireEvent.click(within(panel).getByTestId('get-runtime'));
    expect((await within(panel).findByTestId('runtime-error')).textContent).toContain('is not what the release lists');
  });
});
