import { fireEvent, render, screen, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import { MemoryBackend } from '../lib/backend/memory';
import type { CompatReport } from '../lib/bindings';
import { detailsOf, model } from '../lib/fixtures';
import { parseField, splitArgs } from '../lib/loadSettingsText';
import { LOAD_SETTINGS } from '../lib/bindings';

const GB = 1e9;

function compat(): CompatReport {
  const verdict = { fit: 'cpu-only' as const, gpuLayers: null, layers: 32, gpu: null, vram: 0, ram: 16 * GB, summary: 'Runs on the CPU' };
  return {
    model: 'acme/tiny',
    downloadBytes: 0,
    diskFree: 100 * GB,
    entries: [
      {
        file: 'model.gguf',
        fileBytes: 4 * GB,
        requirements: {
          format: 'gguf', architecture: 'llama', parameters: 7e9, precision: 'Q4_K_M', weightsBytes: 4 * GB, layers: 32,
          maxContext: 32768, context: 8192, kvHeads: 8, headDim: 128, kvCacheType: 'f16', kvCacheBytes: 1_073_741_824,
          computeBytes: 268_435_456, totalBytes: 4 * GB + 1_073_741_824 + 268_435_456,
        },
        now: verdict,
        best: verdict,
      },
    ],
  };
}

describe('load settings in the details', () => {
  it('shows the estimate for what is typed, refuses a value out of bounds, and saves', async () => {
    const m = model('acme/tiny');
    const backend = new MemoryBackend({ models: [m], details: detailsOf(m), compat: compat() });
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    const panel = await screen.findByTestId('load-settings');
    const estimate = await within(panel).findByTestId('ls-estimate');
    expect(estimate.textContent).toContain('1.07 GB f16 KV cache');

    await fireEvent.change(within(panel).getByTestId('ls-kvCacheType'), { target: { value: 'q8_0' } });
    await within(panel).findByText(/570 MB q8_0 KV cache/);
    await fireEvent.input(within(panel).getByTestId('ls-context'), { target: { value: '4096' } });
    await within(panel).findByText(/285 MB q8_0 KV cache/);
    expect(within(panel).getByTestId('ls-estimate').textContent).toContain('4,096 tokens');

    await fireEvent.input(within(panel).getByTestId('ls-parallel'), { target: { value: '0' } });
    expect(within(panel).getByRole('alert').textContent).toContain('Parallel requests: from 1 to 64');
    expect((within(panel).getByTestId('ls-save') as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(within(panel).getByTestId('ls-parallel'), { target: { value: '2' } });

    await fireEvent.click(within(panel).getByTestId('ls-save'));
    await within(panel).findByText(/Saved: a loaded model restarts/);
    expect(backend.actions).toContain('load settings acme/tiny');
    const kept = backend.options.loadSettings?.['acme/tiny'];
    expect([kept?.kvCacheType, kept?.context, kept?.parallel]).toEqual(['q8_0', 4096, 2]);
  });

  it('reads text as the core does', () => {
    expect(splitArgs(`--rope-scaling linear --x 'a b'`)).toEqual(['--rope-scaling', 'linear', '--x', 'a b']);
    expect(splitArgs(`--x 'open`)).toBeNull();
    const threads = LOAD_SETTINGS.find((r) => r.key === 'threads')!;
    expect(parseField(threads, '')).toEqual({ value: null });
    expect(parseField(threads, '2.5')).toEqual({ problem: 'a whole number' });
    const temp = LOAD_SETTINGS.find((r) => r.key === 'temperature')!;
    expect(parseField(temp, '0.7')).toEqual({ value: 0.7 });
  });
});
