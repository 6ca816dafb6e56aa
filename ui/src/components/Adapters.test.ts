import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import { MemoryBackend } from '../lib/backend/memory';
import type { Adapter } from '../lib/bindings';
import { detailsOf, model } from '../lib/fixtures';

const lora = (over: Partial<Adapter> = {}): Adapter => ({
  format: 'gguf', baseNamed: 'acme/tiny-base', base: 'local/base.gguf', linkedBy: 'fits', problem: null,
  file: '/m/lora.gguf', rank: 4, alpha: 8, ...over,
});

describe('adapters in the library', () => {
  it('lists each adapter under its base, says what it runs on, and links it by hand', async () => {
    const base = model('local/base.gguf', { source: 'imported', displayName: 'base.gguf', adapters: ['local/lora.gguf'] });
    const other = model('local/other.gguf', { source: 'imported', displayName: 'other.gguf' });
    const adapter = model('local/lora.gguf', { source: 'imported', displayName: 'lora.gguf', adapter: lora() });
    const orphan = model('local/wide.gguf', {
      source: 'imported', displayName: 'wide.gguf',
      adapter: lora({ base: null, linkedBy: null, baseNamed: 'acme/big', problem: 'its base acme/big is not installed: get it (mm download acme/big), or link another' }),
    });
    // The core lists by name; the window shows adapters under their base.
    const backend = new MemoryBackend({ models: [base, adapter, other, orphan], details: detailsOf(adapter) });
    render(App, { backend });
    const rows = await screen.findAllByTestId('model-row');
    expect(rows.map((r) => r.dataset.id)).toEqual(['local/base.gguf', 'local/lora.gguf', 'local/other.gguf', 'local/wide.gguf']);
    expect(within(rows[1]).getByTestId('adapter-tag').textContent).toContain('↳ adapter');
    expect(within(rows[3]).getByTestId('adapter-tag').textContent).toContain('no base');

    await fireEvent.click(rows[1]);
    const panel = await screen.findByTestId('details');
    const info = await within(panel).findByTestId('adapter-info');
    expect(info.textContent).toContain('GGUF LoRA, rank 4, alpha 8');
    expect(info.textContent).toContain('runs on local/base.gguf');
    expect(info.textContent).toContain('the only installed model it fits');
    expect(within(panel).queryByTestId('client-name')).toBeNull();
    await fireEvent.change(within(panel).getByTestId('base-select'), { target: { value: 'local/other.gguf' } });
    await waitFor(() => expect(within(screen.getByTestId('details')).getByTestId('adapter-info').textContent).toContain('linked by you'));
    expect(backend.actions).toContain('link local/lora.gguf local/other.gguf');
  });

  it('shows a base its adapters by the names clients give, and warns before deleting it', async () => {
    const base = model('acme/base', { adapters: ['acme/lora'] });
    const backend = new MemoryBackend({ models: [base], details: detailsOf(base) });
    render(App, { backend });
    await fireEvent.click((await screen.findAllByTestId('model-row'))[0]);
    const panel = await screen.findByTestId('details');
    expect((await within(panel).findByTestId('base-adapters')).textContent).toContain('acme/base+acme/lora');
    await fireEvent.click(within(panel).getByTestId('delete-button'));
    expect((await within(panel).findByTestId('delete-adapters')).textContent).toBe('Its adapters lose their base: acme/lora.');
  });
});
