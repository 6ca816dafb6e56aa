// Loading in the real window: a tiny llama model (tests/fixtures/tiny_llama.py) activated and loaded in the real
// llama-server, a completion from the endpoint active.json names, a switch to another model while a client sends
// requests in a loop (none fails), Unload (the process is gone), and quitting the app stops what it loaded.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
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

before(async () => {
  assert.ok(fs.existsSync(LLAMA_SERVER), `${LLAMA_SERVER} is missing: build it with scripts/llama-server`);
  // llama-server is found on PATH, as a user's llama.cpp install would be.
  wd = await launchApp({ PATH: `${path.dirname(LLAMA_SERVER)}:${process.env.PATH}`, HF_HUB_CACHE: path.join(files, 'hub') });
  const models = [tiny('tiny-a.gguf', 1), tiny('tiny-b.gguf', 2)];
  await wd.execute('return window.__TAURI_INTERNALS__.invoke("import_paths", { paths: arguments[0] })', [models]);
});

after(async () => {
  await shutdown(wd);
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
  fs.rmSync(home, { recursive: true, force: true });
});
