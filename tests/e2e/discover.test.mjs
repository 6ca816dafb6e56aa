// Discover in the real window: first start opens on the starter models; a search against the fake hub, moved
// through with the keyboard; a repo's quantisations with their fit, and a hostile model card shown inert; one
// quantisation downloaded from there; and the plain offline message.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { launchApp, saveArtifact, shutdown, startFakeHub } from './harness.mjs';

const ARROW_DOWN = '\uE015';
const ENTER = '\uE007';

let wd;
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-discover-'));

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
});

test('search, keyboard, details with fit and a safe card, then download a quantisation', async () => {
  const endpoint = await startFakeHub({ files: 1, fileMb: 1, discover: true });
  wd = await launchApp({ HF_HUB_CACHE: cache, HF_ENDPOINT: endpoint });

  // An empty library: the window opens on the starter catalog.
  const entries = await wd.waitFor('[data-testid="catalog-entry"]');
  assert.ok(entries.length >= 10, `${entries.length} starter models`);
  assert.match(await wd.innerText('main'), /Starter models[\s\S]*Text generation[\s\S]*Speech to text/i);
  saveArtifact('discover-starters.png', await wd.paintedScreenshot());

  const search = await wd.one('[data-testid="discover-search"]');
  await wd.type(search, 'llama');
  await wd.until('results', async () => (await wd.findAll('[data-testid="result-row"]')).length === 5);
  const ids = await wd.execute(
    'return [...document.querySelectorAll("[data-testid=result-row]")].map((r) => r.dataset.id)',
  );
  assert.deepEqual(ids.slice(0, 2), ['meta/llama-gated', 'acme/tiny-llama-GGUF']);
  assert.match(await wd.innerText('[data-testid="result-row"]'), /9M[\s\S]*Gated/);

  // Down once from the search box, then Enter: the second result's details.
  await wd.type(search, ARROW_DOWN);
  await wd.type(search, ENTER);
  const quants = await wd.waitFor('[data-testid="quant-row"]');
  assert.equal(quants.length, 2);
  await wd.until('a fit for every quantisation', async () => (await wd.findAll('[data-testid="quant-row"] [data-fit]')).length === 2);
  assert.match(await wd.innerText('[data-testid="quants"]'), /Q4_K_M\s+3\.\d+ MB[\s\S]*Q8_0\s+6\.\d+ MB/);

  // The card's script never ran, its image and javascript: link are gone, its table rendered.
  const card = await wd.one('[data-testid="card"]');
  assert.match(await wd.text(card), /Tiny Llama GGUF/);
  assert.equal(await wd.execute('return window.__pwned === undefined && document.title !== "pwned"'), true);
  assert.equal(await wd.execute('return document.querySelectorAll("[data-testid=card] script, [data-testid=card] img").length'), 0);
  const hrefs = await wd.execute('return [...document.querySelectorAll("[data-testid=card] a")].map((a) => a.getAttribute("href"))');
  assert.deepEqual(hrefs, ['https://example.org/guide']);
  assert.equal(await wd.execute('return document.querySelectorAll("[data-testid=card] table td").length'), 4);
  saveArtifact('discover-details.png', await wd.paintedScreenshot());

  // Q4_K_M is preselected: download it, and only it arrives.
  assert.match(await wd.text(await wd.one('[data-testid="download-selected"]')), /1 file · 3\.\d+ MB/);
  await wd.click(await wd.one('[data-testid="download-selected"]'));
  await wd.one('[data-testid="queued"]');
  const repo = path.join(cache, 'models--acme--tiny-llama-GGUF');
  await wd.until('the quantisation on disk', async () => {
    const snapshots = path.join(repo, 'snapshots');
    if (!fs.existsSync(snapshots)) return false;
    const [commit] = fs.readdirSync(snapshots);
    return commit && fs.existsSync(path.join(snapshots, commit, 'tiny-llama.Q4_K_M.gguf'));
  });
  const [commit] = fs.readdirSync(path.join(repo, 'snapshots'));
  assert.deepEqual(fs.readdirSync(path.join(repo, 'snapshots', commit)), ['tiny-llama.Q4_K_M.gguf']);
  await wd.until('marked as on this machine', async () =>
    (await wd.execute('return document.querySelectorAll("[data-testid=repo-details] .have").length')) === 1,
  );
});

test('offline, Discover says so plainly and the starter models still show', async () => {
  await shutdown(wd);
  wd = await launchApp({ HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' });
  await wd.click(await wd.one('[data-testid="discover-tab"]'));
  const banner = await wd.one('[data-testid="offline"]');
  assert.match(await wd.text(banner), /HF_HUB_OFFLINE is set/);
  assert.ok((await wd.findAll('[data-testid="catalog-entry"]')).length >= 10);
  await wd.type(await wd.one('[data-testid="discover-search"]'), 'llama');
  const error = await wd.one('[data-testid="search-error"]');
  assert.match(await wd.text(error), /Discover needs the hub, and HF_HUB_OFFLINE is set/);
  saveArtifact('discover-offline.png', await wd.paintedScreenshot());
});
