import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import DiscoverView from './DiscoverView.svelte';
import { Discover } from '../lib/discover.svelte';
import { MemoryBackend } from '../lib/backend/memory';
import { BackendError } from '../lib/backend';
import { catalogEntry, compatOf, hit, repoDetails } from '../lib/fixtures';
import type { SearchPage, SearchQuery } from '../lib/bindings';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setup(backend: MemoryBackend) {
  const discover = new Discover(backend, 20);
  discover.loadCatalog();
  render(DiscoverView, { discover, onshowdownloads: () => {} });
  return discover;
}

const catalog = {
  offline: false,
  entries: [
    catalogEntry('acme/chat-GGUF'),
    catalogEntry('acme/embed', { type: 'embedding' as const, installed: true, files: [] }),
  ],
};

describe('Discover', () => {
  it('shows the starter catalog by type, marks installed entries, and gets one in a click', async () => {
    const backend = new MemoryBackend({ catalog });
    setup(backend);
    const entries = await screen.findAllByTestId('catalog-entry');
    expect(entries.map((e) => e.dataset.id)).toEqual(['acme/chat-GGUF', 'acme/embed']);
    expect([...document.querySelectorAll('h3')].map((h) => h.textContent)).toEqual(['Text generation', 'Embedding']);
    expect(entries[0].textContent).toContain('500 MB');
    expect(entries[1].querySelector('[data-testid="installed"]')).toBeTruthy();
    await fireEvent.click(screen.getByText('Get'));
    expect(backend.started).toEqual([
      { repo: 'acme/chat-GGUF', revision: null, include: [], exclude: [], files: ['chat-GGUF.gguf'], url: null, evict: false },
    ]);
    expect((await screen.findByTestId('queued')).textContent).toContain('acme/chat-GGUF is downloading');
  });

  it('says plainly when offline, and Get is disabled', async () => {
    setup(new MemoryBackend({ catalog: { ...catalog, offline: true } }));
    expect((await screen.findByTestId('offline')).textContent).toContain('HF_HUB_OFFLINE');
    expect((screen.getByText('Get') as HTMLButtonElement).disabled).toBe(true);
  });

  it('offline, a search says why in one line under the banner, not as a second error', async () => {
    const message = 'Discover needs the hub, and HF_HUB_OFFLINE is set: unset it to search; your library works offline';
    const discover = setup(new MemoryBackend({ catalog: { ...catalog, offline: true }, searchError: { code: 'network', message } }));
    await screen.findByTestId('offline');
    discover.set({ text: 'llama' });
    expect((await screen.findByTestId('search-error')).textContent).toBe(message);
    expect(screen.queryByText('The hub cannot be reached')).toBeNull();
  });

  it('searches once typing pauses, with the filters, and shows results with counts and badges', async () => {
    const backend = new MemoryBackend({
      catalog,
      hits: [hit('acme/llama-GGUF', { downloads: 1_234_567, gated: true }), hit('acme/llama-st', { library: 'transformers', installed: true })],
    });
    setup(backend);
    const input = screen.getByTestId('discover-search');
    for (const text of ['l', 'll', 'lla', 'llama']) await fireEvent.input(input, { target: { value: text } });
    const rows = await screen.findAllByTestId('result-row');
    expect(backend.searches.map((s) => s.query.text)).toEqual(['llama']);
    expect(rows).toHaveLength(2);
    expect(rows[0].textContent).toContain('1.2M');
    expect(rows[0].textContent).toContain('Gated');
    expect(rows[0].textContent).toContain('2026-06-30');
    expect(rows[1].textContent).toContain('Installed');

    await fireEvent.change(screen.getByTestId('library-filter'), { target: { value: 'gguf' } });
    await sleep(5);
    expect(backend.searches.at(-1)!.query).toMatchObject({ text: 'llama', library: 'gguf', sort: 'downloads' });
    expect(await screen.findAllByTestId('result-row')).toHaveLength(1);
  });

  it('drops stale answers and ignores searches the core cancelled', async () => {
    const backend = new MemoryBackend({ catalog, hits: [hit('acme/slow'), hit('acme/fast')] });
    const original = backend.searchModels.bind(backend);
    // The first search answers late (and then as cancelled), the second at once.
    backend.searchModels = async (query: SearchQuery, next: string | null): Promise<SearchPage> => {
      if (query.text === 'slow') {
        await sleep(80);
        throw new BackendError({ code: 'cancelled', message: 'a newer search replaced this one' });
      }
      return original(query, next);
    };
    const discover = setup(backend);
    discover.set({ text: 'slow' });
    discover.set({ text: 'fast' });
    await sleep(120);
    expect(discover.state).toBe('ready');
    expect(discover.error).toBeNull();
    expect(screen.getAllByTestId('result-row').map((r) => r.dataset.id)).toEqual(['acme/fast']);
  });

  it('shows a failed search with its message and tries again', async () => {
    const backend = new MemoryBackend({
      catalog,
      hits: [hit('acme/x')],
      searchError: { code: 'network', message: 'the hub at https://hub.test cannot be reached (dns): check the network' },
    });
    const discover = setup(backend);
    discover.set({ text: 'x' });
    expect((await screen.findByTestId('search-error')).textContent).toContain('cannot be reached');
    expect(screen.getByText('The hub cannot be reached')).toBeTruthy();
    backend.options.searchError = undefined;
    await fireEvent.click(screen.getByText('Try again'));
    expect(await screen.findAllByTestId('result-row')).toHaveLength(1);
  });

  it('loads more results from the next page', async () => {
    const hits = Array.from({ length: 5 }, (_, i) => hit(`acme/m${i}`));
    const backend = new MemoryBackend({ catalog, hits });
    const discover = setup(backend);
    discover.set({ text: 'acme', limit: 3 });
    expect(await screen.findAllByTestId('result-row')).toHaveLength(3);
    await fireEvent.click(screen.getByTestId('load-more'));
    await sleep(5);
    expect(screen.getAllByTestId('result-row')).toHaveLength(5);
    expect(screen.queryByTestId('load-more')).toBeNull();
    expect(backend.searches.at(-1)!.next).toBe('3');
  });

  it('moves with the arrow keys, opens details with Enter, and downloads the chosen quantisation', async () => {
    const backend = new MemoryBackend({
      catalog,
      hits: [hit('acme/a-GGUF'), hit('acme/b-GGUF')],
      repos: { 'acme/b-GGUF': repoDetails('acme/b-GGUF') },
      compat: compatOf([
        ['b-GGUF.Q4_K_M.gguf', 'fits-gpu', 'Fits on the GPU'],
        ['b-GGUF.Q8_0.gguf', 'cpu-only', 'Runs on the CPU'],
      ]),
    });
    const discover = setup(backend);
    discover.set({ text: 'GGUF' });
    const input = screen.getByTestId('discover-search');
    await screen.findAllByTestId('result-row');
    await fireEvent.keyDown(input, { key: 'ArrowDown' });
    expect(screen.getAllByTestId('result-row')[1].dataset.cursor).toBe('true');
    await fireEvent.keyDown(input, { key: 'Enter' });
    const quants = await screen.findAllByTestId('quant-row');
    expect(quants.map((q) => q.dataset.name)).toEqual(['Q4_K_M', 'Q8_0']);
    await sleep(5);
    expect(quants[0].querySelector('[data-fit]')!.getAttribute('data-fit')).toBe('fits-gpu');
    expect(quants[1].querySelector('[data-fit]')!.getAttribute('data-fit')).toBe('cpu-only');
    // Q4_K_M is preselected; picking Q8_0 changes what the button downloads.
    expect(screen.getByTestId('download-selected').textContent).toContain('1 file · 800 MB');
    await fireEvent.click(quants[1].querySelector('input')!);
    expect(screen.getByTestId('download-selected').textContent).toContain('1 file · 1.60 GB');
    await fireEvent.click(screen.getByTestId('download-selected'));
    expect(backend.started.at(-1)).toEqual({
      repo: 'acme/b-GGUF', revision: null, include: [], exclude: [], files: ['b-GGUF.Q8_0.gguf'], url: null, evict: false,
    });
    await fireEvent.click(screen.getByTestId('download-all'));
    expect(backend.started.at(-1)!.files).toEqual([]);
  });

  it('opens card links in the system browser and never follows anything else', async () => {
    const card = '<p><a href="https://hub.test/docs">docs</a> <a href="javascript:alert(1)">bad</a></p>';
    const backend = new MemoryBackend({ catalog, repos: { 'acme/c': repoDetails('acme/c', { cardHtml: card }) } });
    const discover = setup(backend);
    await discover.select('acme/c');
    const article = await screen.findByTestId('card');
    await fireEvent.click(article.querySelector('a[href^="https"]')!);
    await fireEvent.click(article.querySelector('a[href^="javascript"]')!);
    expect(backend.opened).toEqual(['https://hub.test/docs']);
    expect(document.querySelector('script')).toBeNull();
  });

  it('names the problem when details cannot be read', async () => {
    const discover = setup(new MemoryBackend({ catalog }));
    await discover.select('acme/missing');
    expect((await screen.findByTestId('details-error')).textContent).toBe('acme/missing was not found');
  });
});
