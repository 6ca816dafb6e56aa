// A download through the real window: type a repo id, preview its files, download it from the fake hub while
// progress shows, and find it in the library.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchApp, saveArtifact, shutdown, startFakeHub } from './harness.mjs';

let wd;
let cache;

before(async () => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-dl-'));
  // 2 x 6 MiB at 4 MB/s: slow enough to see progress, quick enough for a test.
  const endpoint = await startFakeHub({ files: 2, fileMb: 6, throttle: 4_000_000 });
  wd = await launchApp({ HF_HUB_CACHE: cache, HF_ENDPOINT: endpoint });
});

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
});

test('preview, download with progress, then the model is in the library', async () => {
  await wd.click(await wd.one('[data-testid="downloads-tab"]'));
  await wd.type(await wd.one('[data-testid="repo-input"]'), 'bench/model');
  await wd.click(await wd.one('[data-testid="preview-button"]'));

  const total = await wd.text(await wd.one('[data-testid="preview-total"]'));
  assert.equal(total, '3 files · 12.6 MB');
  // Whether it runs here, from its headers read on the hub before any download.
  const fit = await wd.text(await wd.one('[data-testid="preview-fit"]'));
  assert.match(fit, /(Fits on the GPU|Runs on the CPU)/);
  saveArtifact('download-preview.png', await wd.paintedScreenshot());

  await wd.click(await wd.one('[data-testid="download-button"]'));
  const row = await wd.one('[data-testid="download-row"]');
  await wd.until('bytes moving', async () => {
    const text = await wd.text(await wd.one('[data-testid="download-bytes"]'));
    return /^(?!0 B)[\d.]+ [kMG]?B \/ 12.6 MB/.test(text) && !text.includes('100%');
  });
  saveArtifact('download-progress.png', await wd.paintedScreenshot());

  await wd.until('completion', async () => (await wd.attribute(row, 'data-state')) === 'completed', 60000);
  assert.match(await wd.text(row), /12\.6 MB \/ 12\.6 MB · 100%/);
  saveArtifact('download-done.png', await wd.paintedScreenshot());

  // The library rescans on completion and lists the model as complete.
  await wd.click((await wd.findAll('nav button'))[0]);
  const model = await wd.one('[data-testid="model-row"]');
  assert.match(await wd.text(model), /bench\/model/);
  assert.match(await wd.text(model), /Available/);
  assert.match(await wd.text(await wd.one('[data-testid="fit-badge"]')), /Fits GPU|CPU only/);
  // And the files are where huggingface_hub looks for them.
  const repoDir = path.join(cache, 'models--bench--model');
  const commit = fs.readFileSync(path.join(repoDir, 'refs', 'main'), 'utf8');
  assert.equal(fs.readdirSync(path.join(repoDir, 'snapshots', commit)).length, 3);
});
