// The real app window under Xvfb lists the models of a prepared Hugging Face cache.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { ROOT, launchApp, saveArtifact, shutdown } from './harness.mjs';

const COMMIT = '0123456789abcdef0123456789abcdef01234567';
const CONFIG = '{"architectures":["LlamaForCausalLM"]}';
const MM = path.join(ROOT, 'target/debug/mm');

/** A cache laid out as huggingface_hub writes it: blobs, relative snapshot links, a ref. */
function prepareCache() {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-cache-'));
  const repo = path.join(cache, 'models--acme--tiny-llm');
  const snapshot = path.join(repo, 'snapshots', COMMIT);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(path.join(snapshot, 'onnx'), { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
  // Blobs are named by their hashes, as the hub names them, so that verification can pass.
  const config = CONFIG;
  const weights = Buffer.alloc(2048, 1);
  const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');
  fs.writeFileSync(path.join(repo, 'blobs', sha256(weights)), weights);
  fs.writeFileSync(path.join(repo, 'blobs', sha256(config)), config);
  fs.symlinkSync(`../../blobs/${sha256(config)}`, path.join(snapshot, 'config.json'));
  fs.symlinkSync(`../../../blobs/${sha256(weights)}`, path.join(snapshot, 'onnx', 'model.onnx'));
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

test('the library window shows the cached model with type, format, size and status', async () => {
  const rows = await wd.waitFor('[data-testid="model-row"]');
  assert.equal(rows.length, 1);
  const text = await wd.text(rows[0]);
  assert.match(text, /acme\/tiny-llm/);
  assert.match(text, /Text generation/); // from config.json's architectures
  assert.match(text, /ONNX/);
  assert.match(text, /2\.09 kB/); // 2048 + 39 bytes, each blob once
  assert.match(text, /Available/);
  const count = await wd.text((await wd.findAll('[data-testid="model-count"]'))[0]);
  assert.equal(count, '1 model');

  const png = await wd.paintedScreenshot();
  const file = saveArtifact('library.png', png);
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.ok(png.length > 5000, `${file} looks blank (${png.length} bytes)`);
});

test('activate from the window; other programs see it; the CLI deactivates and the window follows', async () => {
  await wd.click((await wd.findAll('[data-testid="model-row"] td'))[0]);
  await wd.click(await wd.one('[data-testid="activate-button"]'));
  const strip = await wd.one('[data-testid="active-strip"]');
  assert.match(await wd.text(strip), /Text generation · acme\/tiny-llm/);
  saveArtifact('activated.png', await wd.paintedScreenshot());

  const data = path.join(wd.home, 'data', 'dev.model-manager.app');
  const manifest = JSON.parse(fs.readFileSync(path.join(data, 'active.json'), 'utf8'));
  const snapshot = path.join(cache, 'models--acme--tiny-llm', 'snapshots', COMMIT);
  assert.equal(manifest['text-generation'].id, 'acme/tiny-llm');
  assert.equal(manifest['text-generation'].path, snapshot);
  assert.equal(fs.readlinkSync(path.join(data, 'active', 'text-generation')), snapshot);
  assert.equal(fs.readFileSync(path.join(data, 'active', 'text-generation', 'config.json'), 'utf8'), CONFIG);

  // `mm deactivate` in another process; the window follows within about a second, without polling the UI.
  const started = Date.now();
  execFileSync(MM, ['deactivate', 'text-generation'], { env: { ...process.env, HF_HUB_CACHE: cache, XDG_DATA_HOME: path.join(wd.home, 'data') } });
  await wd.until('the window to follow the CLI', async () => (await wd.findAll('[data-testid="active-strip"]')).length === 0, 5000);
  assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
  assert.equal(fs.existsSync(path.join(data, 'active', 'text-generation')), false);
});

test('details: files and hashes, verify, and a delete that says what it frees', async () => {
  const panel = await wd.one('[data-testid="details"]');
  await wd.until('details loaded', async () => (await wd.text(panel)).includes('Revisions'));
  const shown = await wd.innerText('[data-testid="details"]');
  assert.match(shown, /onnx\/model\.onnx/);
  assert.match(shown, /config\.json/);
  await wd.click(await wd.one('[data-testid="verify-button"]'));
  const result = await wd.one('[data-testid="verify-result"]');
  assert.equal(await wd.text(result), 'All 2 files match their hashes.');
  saveArtifact('details.png', await wd.paintedScreenshot());

  await wd.click(await wd.one('[data-testid="delete-button"]'));
  const confirm = await wd.one('[data-testid="confirm-delete"]');
  assert.match(await wd.text(confirm), /This frees 2\.09 kB/);
  await wd.click(await wd.one('[data-testid="confirm-delete-button"]'));
  await wd.until('the library to be empty', async () => (await wd.findAll('[data-testid="model-row"]')).length === 0);
  assert.equal(fs.existsSync(path.join(cache, 'models--acme--tiny-llm')), false, 'the files are gone from disk');
});

test('storage and settings views', async () => {
  await wd.click(await wd.one('[data-testid="storage-tab"]'));
  const summary = await wd.text(await wd.one('[data-testid="storage-summary"]'));
  assert.match(summary, /^Models take 0 B; .* free of .* on this disk\.$/);
  await wd.click(await wd.one('[data-testid="settings-tab"]'));
  const max = await wd.one('[data-testid="max-concurrent"]');
  await wd.request('POST', wd.s(`/element/${max}/clear`), {});
  await wd.type(max, '5');
  await wd.click((await wd.findAll('button[type="submit"]'))[0]);
  await wd.until('saved', async () => (await wd.findAll('[role="status"]')).length > 0);
  saveArtifact('settings.png', await wd.paintedScreenshot());
  const stored = JSON.parse(fs.readFileSync(path.join(wd.home, 'data', 'dev.model-manager.app', 'settings.json'), 'utf8'));
  assert.equal(stored.maxConcurrentDownloads, 5, 'the app wrote the settings file the CLI reads');
});
