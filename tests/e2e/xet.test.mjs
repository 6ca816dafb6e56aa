// A download from today's Hub in the real window: the fake hub keeps the weights in a local Xet CAS (resolve answers
// carry X-Xet-Hash and the read-token link), and the window downloads them over Xet, says so, and lists the model.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchApp, saveArtifact, shutdown, startFakeHub } from './harness.mjs';

let wd;
let cache;

before(async () => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-xet-'));
  const endpoint = await startFakeHub({ files: 2, fileMb: 4, xet: true });
  wd = await launchApp({ HF_HUB_CACHE: cache, HF_ENDPOINT: endpoint });
});

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
});

test('a Xet-backed model downloads over Xet, verified, and the row says how it came', async () => {
  await wd.click(await wd.one('[data-testid="downloads-tab"]'));
  await wd.type(await wd.one('[data-testid="repo-input"]'), 'bench/model');
  await wd.click(await wd.one('[data-testid="preview-button"]'));
  await wd.one('[data-testid="preview-total"]');
  await wd.click(await wd.one('[data-testid="download-button"]'));
  const row = await wd.one('[data-testid="download-row"]');
  await wd.until('completion', async () => (await wd.attribute(row, 'data-state')) === 'completed', 60000);
  assert.equal(await wd.text(await wd.one('[data-testid="download-transport"]')), 'via Xet; HTTP');
  saveArtifact('xet-download-done.png', await wd.paintedScreenshot());
  // Every blob is named by, and holds, its hash.
  const blobs = path.join(cache, 'models--bench--model', 'blobs');
  const weights = fs.readdirSync(blobs).filter((b) => b.length === 64);
  assert.equal(weights.length, 2);
  for (const b of weights) {
    assert.equal(crypto.createHash('sha256').update(fs.readFileSync(path.join(blobs, b))).digest('hex'), b);
  }
});
