// Loading in the real window: a tiny llama model (tests/fixtures/tiny_llama.py) activated and loaded in the real
// llama-server, a completion from the endpoint active.json names, a switch to another model while a client sends
// requests in a loop (none fails), a model's load settings typed in its details (the estimate follows) and used by
// its next load, llama.cpp got from a release server in GitHub's shape in Settings → Runtimes and rolled back,
// Unload (the process is gone), and quitting the app stops what it loaded.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchApp, ROOT, saveArtifact, shutdown } from './harness.mjs';

const LLAMA_SERVER = process.env.MM_TEST_LLAMA_SERVER
  ?? path.join(os.homedir(), '.cache/model-manager-build/llama-server-11434.0.0/llama-server');
const files = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-runtime-'));
let wd;

const tiny = (name, seed) => {
  const file = path.join(files, name);
  execFileSync(path.join(ROOT, 'target/py-venv/bin/python'), [path.join(ROOT, 'tests/fixtures/tiny_llama.py'), file, String(seed)]);
  return file;
};
const alive = (pid) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].startsWith('Z');
  } catch {
    return false;
  }
};
const manifest = () => JSON.parse(fs.readFileSync(path.join(wd.home, 'data/dev.model-manager.app/active.json'), 'utf8'));
const complete = async (endpoint) => {
  const res = await fetch(`${endpoint}/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt: 'hello world', max_tokens: 4 }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${res.status}: ${JSON.stringify(body)}`);
  return body.model;
};

/// llama.cpp's releases as GitHub's API serves them: one release, b200, whose CPU build is the real llama-server.
const releases = async () => {
  const tree = path.join(files, 'release');
  fs.mkdirSync(path.join(tree, 'build/bin'), { recursive: true });
  fs.copyFileSync(LLAMA_SERVER, path.join(tree, 'build/bin/llama-server'));
  const archive = path.join(files, 'llama-b200-bin-ubuntu-x64.tar.gz');
  execFileSync('tar', ['-czf', archive, '-C', tree, 'build']);
  const bytes = fs.readFileSync(archive);
  const digest = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
  const server = http.createServer((req, res) => {
    const base = `http://${req.headers.host}`;
    if (req.url === '/repos/ggml-org/llama.cpp/releases/latest') {
      const asset = { name: path.basename(archive), size: bytes.length, digest, browser_download_url: `${base}/asset` };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ tag_name: 'b200', assets: [asset] }));
    } else if (req.url === '/asset') {
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    } else {
      res.writeHead(404).end('{}');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
};
let releaseServer;

before(async () => {
  assert.ok(fs.existsSync(LLAMA_SERVER), `${LLAMA_SERVER} is missing: build it with scripts/llama-server`);
  releaseServer = await releases();
  const releasesUrl = `http://127.0.0.1:${releaseServer.address().port}/repos/ggml-org/llama.cpp/releases`;
  // llama-server is found on PATH, as a user's llama.cpp install would be.
  wd = await launchApp({
    PATH: `${path.dirname(LLAMA_SERVER)}:${process.env.PATH}`,
    HF_HUB_CACHE: path.join(files, 'hub'),
    MM_LLAMA_CPP_RELEASES: releasesUrl,
  });
  const models = [tiny('tiny-a.gguf', 1), tiny('tiny-b.gguf', 2)];
  await wd.execute('return window.__TAURI_INTERNALS__.invoke("import_paths", { paths: arguments[0] })', [models]);
});

after(async () => {
  await shutdown(wd);
  releaseServer?.close();
  fs.rmSync(files, { recursive: true, force: true });
});

const open = async (id) => {
  await wd.click(await wd.one('[data-testid="library-tab"]'));
  await wd.until(`the row of ${id}`, async () => (await wd.execute(`return !!document.querySelector('[data-id="${id}"]')`)));
  await wd.click(await wd.one(`[data-id="${id}"] td`));
  await wd.until(`the details of ${id}`, async () => (await wd.innerText('[data-testid="details"] h2')) === id);
};

let firstPid;

test('activate and Load serve the model on the endpoint active.json names', async () => {
  await open('local/tiny-a.gguf');
  await wd.click(await wd.one('[data-testid="activate-button"]'));
  await wd.click(await wd.waitFor('[data-testid="load-button"]').then((b) => b[0]));
  await wd.until('the model is served', async () => (await wd.execute(
    'return document.querySelector("[data-testid=runtime-state]")?.textContent')) === 'Serving', 60000);
  const endpoint = manifest()['text-generation'].endpoint;
  assert.match(endpoint, /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  assert.equal(await wd.innerText('[data-testid="runtime-endpoint"]'), endpoint);
  assert.equal(await complete(endpoint), 'local/tiny-a.gguf');
  const loaded = await wd.execute('return window.__TAURI_INTERNALS__.invoke("operation", { name: "loaded", args: {} })');
  firstPid = loaded[0].pid;
  assert.ok(alive(firstPid));
  await wd.until('memory measured', async () => /measured/.test(await wd.innerText('[data-testid="runtime-memory"]')), 20000);
  saveArtifact('runtime-loaded.png', await wd.paintedScreenshot());
});

test('switching the active model swaps it on the same endpoint without a failed request', async () => {
  const endpoint = manifest()['text-generation'].endpoint;
  let stop = false;
  const failures = [];
  const seen = new Set();
  let answered = 0;
  const client = (async () => {
    while (!stop) {
      try {
        seen.add(await complete(endpoint));
        answered += 1;
      } catch (e) {
        failures.push(String(e));
      }
    }
  })();
  await open('local/tiny-b.gguf');
  await wd.click(await wd.one('[data-testid="activate-button"]'));
  await wd.until('the new model is served', async () => (await wd.execute(
    'return document.querySelector("[data-testid=runtime-state]")?.textContent')) === 'Serving', 60000);
  const before = answered;
  while (answered < before + 10) await new Promise((r) => setTimeout(r, 20));
  stop = true;
  await client;
  assert.deepEqual(failures, []);
  assert.deepEqual([...seen].sort(), ['local/tiny-a.gguf', 'local/tiny-b.gguf']);
  assert.equal(manifest()['text-generation'].endpoint, endpoint, 'the same endpoint');
  await wd.until('the old llama-server is gone', async () => !alive(firstPid), 15000);
  saveArtifact('runtime-switched.png', await wd.paintedScreenshot());
});

test('a load or unload from mm in a terminal shows in the window', async () => {
  const mm = (...args) => execFileSync(path.join(ROOT, 'target/debug/mm'), args, { env: { ...wd.env, MM_KEYRING: '0' } });
  const state = () => wd.execute('return document.querySelector("[data-testid=runtime-state]")?.textContent ?? null');
  mm('unload');
  await wd.until('the window shows it unloaded', async () => (await state()) === null, 15000);
  mm('load');
  await wd.until('the window shows it served again', async () => (await state()) === 'Serving', 15000);
});

test('the local server serves every model by name, loading it on demand, while its setting is on', async () => {
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  await wd.click(await wd.one('[data-testid="settings-tab"]'));
  await wd.click(await wd.one('[data-testid="local-server"]'));
  const field = await wd.one('[data-testid="local-server-port"]');
  await wd.request('POST', wd.s(`/element/${field}/clear`), {});
  await wd.type(field, String(port));
  await wd.click((await wd.findAll('button[type="submit"]'))[0]);
  await wd.until('saved', async () => (await wd.findAll('[role="status"]')).length > 0);
  const base = `http://127.0.0.1:${port}`;
  await wd.until('the local server answers', async () => fetch(`${base}/v1/models`).then((r) => r.ok, () => false), 15000);
  const names = (await (await fetch(`${base}/v1/models`)).json()).data.map((m) => m.id);
  assert.ok(names.includes('local/tiny-a.gguf') && names.includes('local/tiny-b.gguf'), names.join(', '));
  // tiny-a is not loaded (tiny-b serves text generation): a request naming it loads it beside.
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer unused' },
    body: JSON.stringify({ model: 'local/tiny-a.gguf', messages: [{ role: 'user', content: 'hello' }], max_tokens: 4 }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal((await res.json()).model, 'local/tiny-a.gguf');
  await wd.click(await wd.one('[data-testid="storage-tab"]'));
  await wd.until('System shows the address', async () => (await wd.innerText('[data-testid="local-server-address"]')).includes(base));
  await wd.until('both models listed as loaded', async () => (await wd.findAll('[data-testid="loaded-row"]')).length === 2, 15000);
  saveArtifact('local-server.png', await wd.paintedScreenshot());
  // Back as it was: tiny-a unloaded, the server off (its port closed).
  await wd.execute('return window.__TAURI_INTERNALS__.invoke("operation", { name: "unload", args: { ask: { target: "local/tiny-a.gguf" } } })');
  await wd.click(await wd.one('[data-testid="settings-tab"]'));
  await wd.click(await wd.one('[data-testid="local-server"]'));
  await wd.click((await wd.findAll('button[type="submit"]'))[0]);
  await wd.until('the local server stopped', async () => fetch(`${base}/v1/models`).then(() => false, () => true), 15000);
  await open('local/tiny-b.gguf');
});

const settingsFile = () => JSON.parse(fs.readFileSync(path.join(wd.home, 'data/dev.model-manager.app/settings.json'), 'utf8'));
const choose = (selector, value) => wd.execute(
  `const s = document.querySelector(arguments[0]); s.value = arguments[1]; s.dispatchEvent(new Event('change', { bubbles: true }));`,
  [selector, value]);

test('load settings typed in the details change the estimate, and the next load runs with them', async () => {
  await open('local/tiny-b.gguf');
  await wd.click(await wd.one('[data-testid="load-settings"] summary'));
  await wd.until('the estimate for the settings', async () => (await wd.innerText('[data-testid="ls-estimate"]')).includes('f16 KV cache'));
  await choose('[data-testid="ls-kvCacheType"]', 'q8_0');
  await wd.type(await wd.one('[data-testid="ls-context"]'), '1024');
  await wd.until('the estimate follows the typing', async () => {
    const text = await wd.innerText('[data-testid="ls-estimate"]');
    return text.includes('q8_0 KV cache') && /1,?024 tokens/.test(text);
  });
  saveArtifact('load-settings.png', await wd.paintedScreenshot());
  // The tiny model's heads are too narrow for a quantised cache: f16 again, and two threads.
  await choose('[data-testid="ls-kvCacheType"]', '');
  await wd.type(await wd.one('[data-testid="ls-threads"]'), '2');
  await wd.click(await wd.one('[data-testid="ls-save"]'));
  await wd.until('saved', async () => (await wd.innerText('[data-testid="load-settings"]')).includes('Saved'));
  const kept = settingsFile().loadSettings['local/tiny-b.gguf'];
  assert.deepEqual([kept.kvCacheType, kept.context, kept.threads], [null, 1024, 2]);
  // The next request restarts the serving runtime with them.
  const endpoint = manifest()['text-generation'].endpoint;
  assert.equal(await complete(endpoint), 'local/tiny-b.gguf');
  await wd.until('the details show the runtime with them', async () => {
    const text = await wd.innerText('[data-testid="runtime-status"]');
    return text.includes('--ctx-size 1024') && text.includes('--threads 2');
  }, 30000);
  await wd.click(await wd.one('[data-testid="ls-reset"]'));
  await wd.click(await wd.one('[data-testid="ls-save"]'));
  await wd.until('back to automatic', async () => settingsFile().loadSettings?.['local/tiny-b.gguf'] === undefined);
});

test('Settings → Runtimes gets llama.cpp from its releases, makes it the default, and rolls back', async () => {
  await wd.click(await wd.one('[data-testid="settings-tab"]'));
  await wd.until('the llama-server on PATH listed with its version', async () =>
    (await wd.innerText('[data-testid="runtimes"]')).includes('PATH'), 15000);
  await wd.click(await wd.one('[data-testid="get-runtime"]'));
  await wd.until('got and tried', async () =>
    (await wd.execute('return document.querySelector("[data-testid=runtime-got]")?.textContent ?? ""')).includes('b200-cpu'), 60000);
  const rows = await wd.execute('return [...document.querySelectorAll("[data-testid=runtime-row]")].map((r) => r.textContent)');
  assert.ok(rows.some((r) => r.includes('●') && r.includes('b200-cpu') && r.includes('release b200')), rows.join(' | '));
  saveArtifact('runtimes.png', await wd.paintedScreenshot());
  assert.match(settingsFile().llamaServer, /runtimes\/llama\.cpp\/b200-cpu\/build\/bin\/llama-server$/);
  await wd.click(await wd.one('[data-testid="rollback-runtime"]'));
  await wd.until('back to the one on PATH', async () => {
    const rows = await wd.execute('return [...document.querySelectorAll("[data-testid=runtime-row]")].map((r) => r.textContent)');
    return rows.some((r) => r.includes('●') && r.includes('PATH'));
  });
  assert.equal(settingsFile().llamaServer ?? null, null);
  await open('local/tiny-b.gguf');
});

test('Unload stops the runtime; a load the app made ends with the app', async () => {
  const [loaded] = await wd.execute('return window.__TAURI_INTERNALS__.invoke("operation", { name: "loaded", args: {} })');
  await wd.click(await wd.one('[data-testid="unload-button"]'));
  await wd.waitFor('[data-testid="load-button"]');
  await wd.until('the unloaded llama-server is gone', async () => !alive(loaded.pid), 15000);
  assert.equal(manifest()['text-generation'].endpoint, null, 'active.json no longer names an endpoint');

  await wd.click(await wd.one('[data-testid="load-button"]'));
  await wd.until('served again', async () => (await wd.execute(
    'return document.querySelector("[data-testid=runtime-state]")?.textContent')) === 'Serving', 60000);
  const [again] = await wd.execute('return window.__TAURI_INTERNALS__.invoke("operation", { name: "loaded", args: {} })');
  const home = wd.home;
  await shutdown(wd);
  wd = null;
  const deadline = Date.now() + 20000;
  while (alive(again.pid)) {
    assert.ok(Date.now() < deadline, 'the runtime the app loaded outlived the app');
    await new Promise((r) => setTimeout(r, 200));
  }
  fs.rmSync(home, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
});
