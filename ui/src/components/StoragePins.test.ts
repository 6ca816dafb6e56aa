import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import App from '../App.svelte';
import { MemoryBackend, defaultSettings } from '../lib/backend/memory';
import { detailsOf, model, storageOf } from '../lib/fixtures';

describe('a model in storage', () => {
  it('shows when it was last used, pins it for storage, and moves it to a library folder', async () => {
    const m = model('acme/tiny', { lastUsed: Math.floor(Date.now() / 1000) - 7200, path: '/cache/models--acme--tiny' });
    const backend = new MemoryBackend({
      models: [m],
      details: detailsOf(m),
      storage: { ...storageOf(), cacheDir: '/cache' },
      settings: { ...defaultSettings(), libraryFolders: ['/mnt/slow'] },
    });
    render(App, { backend });
    const row = (await screen.findAllByTestId('model-row'))[0];
    expect(within(row).getByTestId('used').textContent).toContain('2 hours ago');
    await fireEvent.click(row);
    const panel = await screen.findByTestId('details');
    expect((await within(panel).findByTestId('last-used')).textContent).toContain('2 hours ago');
    await fireEvent.click(within(panel).getByTestId('storage-pin'));
    await waitFor(() => expect(backend.actions).toContain('storage-pin acme/tiny'));
    const select = await within(panel).findByTestId('move-select');
    expect([...select.querySelectorAll('option')].map((o) => o.value)).toEqual(['', '/mnt/slow']);
    await fireEvent.change(select, { target: { value: '/mnt/slow' } });
    await waitFor(() => expect(backend.actions).toContain('move acme/tiny /mnt/slow'));
  });
});
