// Other sources in the real window: a local Ollama's models in the library and a pull from the Downloads view;
// files imported through the same path a drop takes (WebKitGTK under Xvfb cannot synthesise a native file drop
// from WebDriver, so the test calls the import command the drop handler calls); a file-URL download.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { gguf, launchApp, saveArtifact, shutdown, startFakeHubAndOllama } from './harness.mjs';

let wd;
let endpoint;
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-sources-'));
const files = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-files-'));

before(async () => {
  const started = await startFakeHubAndOllama();
  endpoint = started.endpoint;
  wd = await launchApp({ HF_HUB_CACHE: cache, HF_ENDPOINT: endpoint, OLLAMA_HOST: started.ollama });
});

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
  fs.rmSync(files, { recursive: true, force: true });
});

const rowIds = () => wd.execute('return [...document.querySelectorAll("[data-testid=model-row]")].map((r) => r.dataset.id)');

test('Ollama models are in the library, labelled', async () => {
  await wd.until('the Ollama model', async () => (await rowIds()).includes('ollama/llama3.2:1b'));
  const label = await wd.execute('return document.querySelector("[data-id=\'ollama/llama3.2:1b\'] [data-testid=source]").textContent');
  assert.equal(label, 'Ollama');
});

test('imported files join the library, and each problem is reported', async () => {
  const model = path.join(files, 'tiny-llama.gguf');
  fs.writeFileSync(model, gguf());
  const notes = path.join(files, 'notes.txt');
  fs.writeFileSync(notes, 'not a model');
  await wd.execute('return window.__TAURI_INTERNALS__.invoke("import_paths", { paths: arguments[0] })', [[model, notes, model]]);
  const outcomes = await wd.waitFor('[data-testid="import-outcome"]');
  assert.equal(outcomes.length, 3);
  const statuses = await wd.execute('return [...document.querySelectorAll("[data-testid=import-outcome]")].map((o) => o.dataset.status)');
  assert.deepEqual(statuses, ['imported', 'failed', 'duplicate']);
  assert.match(await wd.innerText('[data-testid="import-results"]'), /notes\.txt is not a model/);
  await wd.until('the imported model', async () => (await rowIds()).includes('local/tiny-llama.gguf'));
  saveArtifact('sources-imported.png', await wd.paintedScreenshot());
});

test('a file URL downloads into the models folder, and an Ollama pull shows as a download', async () => {
  await wd.click(await wd.one('[data-testid="downloads-tab"]'));
  const url = `${endpoint}/bench/model/resolve/main/model-00000-of-00001.safetensors`;
  await wd.type(await wd.one('[data-testid="repo-input"]'), url);
  await wd.click(await wd.one('[data-testid="url-download-button"]'));
  await wd.until('the URL download completes', async () => {
    const rows = await wd.execute('return [...document.querySelectorAll("[data-testid=download-row]")].map((r) => r.dataset.state)');
    return rows.includes('completed');
  }, 60000);
  const stored = path.join(wd.home, 'data/dev.model-manager.app/models/model-00000-of-00001.safetensors');
  assert.ok(fs.existsSync(stored), `${stored} exists`);

  await wd.type(await wd.one('[data-testid="ollama-input"]'), 'qwen:0.5b');
  await wd.click(await wd.one('[data-testid="ollama-pull"]'));
  await wd.until('the pull completes', async () => {
    const states = await wd.execute('return [...document.querySelectorAll("[data-testid=download-row]")].map((r) => r.dataset.state)');
    return states.filter((s) => s === 'completed').length === 2;
  });
  saveArtifact('sources-downloads.png', await wd.paintedScreenshot());
  await wd.click(await wd.one('[data-testid="library-tab"]'));
  await wd.until('both in the library', async () => {
    const ids = await rowIds();
    return ids.includes('ollama/qwen:0.5b') && ids.includes('local/model-00000-of-00001.safetensors');
  });
  const label = (id) => wd.execute(`return document.querySelector('[data-id="${id}"] [data-testid=source]').textContent`);
  assert.equal(await label('local/model-00000-of-00001.safetensors'), 'URL');
  assert.equal(await label('local/tiny-llama.gguf'), 'imported');
  saveArtifact('sources-library.png', await wd.paintedScreenshot());
});

test('with "copy" set in Settings, an import is copied into the models folder and the original stays', async () => {
  await wd.click(await wd.one('[data-testid="settings-tab"]'));
  await wd.click(await wd.one('[data-testid="copy-imports"]'));
  await wd.click(await wd.one('form .actions button.primary'));
  const settingsFile = path.join(wd.home, 'data/dev.model-manager.app/settings.json');
  await wd.until('the setting is saved', async () => JSON.parse(fs.readFileSync(settingsFile, 'utf8')).copyImports === true);
  // 32 MiB past the header, so the copy runs in steps with progress.
  const model = path.join(files, 'copied-llama.gguf');
  fs.writeFileSync(model, Buffer.concat([gguf(), Buffer.alloc(32 << 20, 7)]));
  await wd.click(await wd.one('[data-testid="library-tab"]'));
  await wd.execute('return window.__TAURI_INTERNALS__.invoke("import_paths", { paths: arguments[0] })', [[model]]);
  await wd.until('the copied model', async () => (await rowIds()).includes('local/copied-llama.gguf'));
  const statuses = await wd.execute('return [...document.querySelectorAll("[data-testid=import-outcome]")].map((o) => o.dataset.status)');
  assert.deepEqual(statuses, ['imported']);
  const copy = path.join(wd.home, 'data/dev.model-manager.app/models/copied-llama.gguf');
  assert.ok(fs.readFileSync(copy).equals(fs.readFileSync(model)), 'the copy has the same bytes');
  const models = fs.readdirSync(path.dirname(copy));
  assert.ok(!models.some((n) => n.includes('.copying')), `no staging copy is left: ${models}`);
});

test('Cancel stops a long import in the window and leaves no partial copy', async () => {
  // A GGUF header before a hole of up to 4 GiB: seconds of copying and hashing (copy is still on). The hole is at
  // most a third of the free space, so the copy fits on a nearly full disk (the import checks the room first).
  const disk = fs.statfsSync(wd.home);
  const hole = Math.min(4 * 1024 ** 3, Math.floor((disk.bavail * disk.bsize) / 3));
  assert.ok(hole >= 256 * 1024 ** 2, `this test needs 800 MB free in ${wd.home}`);
  const big = path.join(files, 'huge-llama.gguf');
  fs.writeFileSync(big, gguf());
  fs.truncateSync(big, hole);
  await wd.execute('window.__TAURI_INTERNALS__.invoke("import_paths", { paths: arguments[0] }); return true', [[big]]);
  await wd.click(await wd.one('[data-testid="import-cancel"]', 20000));
  await wd.until('the cancelled outcome', async () => {
    const statuses = await wd.execute('return [...document.querySelectorAll("[data-testid=import-outcome]")].map((o) => o.dataset.status)');
    return statuses.length === 1 && statuses[0] === 'cancelled';
  });
  assert.match(await wd.innerText('[data-testid="import-results"]'), /0 imported, 1 cancelled/);
  const models = fs.readdirSync(path.join(wd.home, 'data/dev.model-manager.app/models'));
  assert.deepEqual(models.filter((n) => n.includes('huge') || n.includes('.copying')), [], 'nothing of it is left');
  assert.ok(!(await rowIds()).includes('local/huge-llama.gguf'));
});
