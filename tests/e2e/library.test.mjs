// The real app window under Xvfb lists the models of a prepared Hugging Face cache.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchApp, saveArtifact, shutdown } from './harness.mjs';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';

/** A cache laid out as huggingface_hub writes it: blobs, relative snapshot links, a ref. */
function prepareCache() {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-cache-'));
  const repo = path.join(cache, 'models--acme--tiny-llm');
  const snapshot = path.join(repo, 'snapshots', COMMIT);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(snapshot, 'onnx'), { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'blobs', 'aaaa'), Buffer.alloc(2048, 1));
  fs.writeFileSync(path.join(repo, 'blobs', 'bbbb'), '{"model_type":"llama"}');
  fs.symlinkSync('../../blobs/bbbb', path.join(snapshot, 'config.json'));
  fs.symlinkSync('../../../blobs/aaaa', path.join(snapshot, 'onnx', 'model.onnx'));
  fs.writeFileSync(path.join(repo, 'refs', 'main'), COMMIT);
  return cache;
}

let wd;
let cache;

before(async () => {
  cache = prepareCache();
  wd = await launchApp({ HF_HUB_CACHE: cache });
});

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
});

test('the library window shows the cached model with revision, size and status', async () => {
  const rows = await wd.waitFor('[data-testid="model-row"]');
  assert.equal(rows.length, 1);
  const text = await wd.text(rows[0]);
  assert.match(text, /acme\/tiny-llm/);
  assert.match(text, /main/);
  assert.match(text, /0123456/);
  assert.match(text, /2\.07 kB/); // 2048 + 22 bytes, each blob once
  assert.match(text, /Complete/);
  const count = await wd.text((await wd.findAll('[data-testid="model-count"]'))[0]);
  assert.equal(count, '1 repo');

  const png = await wd.paintedScreenshot();
  const file = saveArtifact('library.png', png);
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.length > 5000, `${file} looks blank (${png.length} bytes)`);
});
