// One app per data folder, as a desktop user meets it: the window comes back at the size and place it was left
// (tauri-plugin-window-state), and a second launch with a model file (what "Open with Model Manager" runs) hands
// the file to the first window, which imports it, and quits; a model another program puts in a library folder shows
// without a refresh (inotify); the System view names the log and copies the diagnostics.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { APP, gguf, launchApp, saveArtifact, shutdown } from './harness.mjs';

let wd;
const config = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-config-'));
const files = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-open-'));
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-instance-'));
const data = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-data-'));
const library = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-library-'));

before(async () => {
  // The size and place the window was left at last time, as the plugin writes them.
  const state = { width: 900, height: 600, x: 40, y: 30, prev_x: 40, prev_y: 30, maximized: false, visible: true, decorated: true, fullscreen: false };
  fs.mkdirSync(path.join(config, 'dev.model-manager.app'), { recursive: true });
  fs.writeFileSync(path.join(config, 'dev.model-manager.app/.window-state.json'), JSON.stringify({ main: state }));
  fs.mkdirSync(path.join(data, 'dev.model-manager.app'), { recursive: true });
  fs.writeFileSync(path.join(data, 'dev.model-manager.app/settings.json'), JSON.stringify({ libraryFolders: [library] }));
  // The session bus the single-instance plugin finds other instances on.
  wd = await launchApp({ XDG_CONFIG_HOME: config, XDG_DATA_HOME: data, HF_HUB_CACHE: cache, DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS });
});

after(async () => {
  await shutdown(wd);
  for (const dir of [config, files, cache, data, library]) fs.rmSync(dir, { recursive: true, force: true });
});

const rowIds = () => wd.execute('return [...document.querySelectorAll("[data-testid=model-row]")].map((r) => r.dataset.id)');

test('the window opens at the size it was left at', async () => {
  await wd.until('the window to be drawn', async () => (await wd.execute('return document.readyState')) === 'complete');
  assert.deepEqual(await wd.execute('return [window.innerWidth, window.innerHeight]'), [900, 600]);
});

test('a second launch hands its file to the first window and quits', async () => {
  assert.ok(process.env.DBUS_SESSION_BUS_ADDRESS, 'the tests run under dbus-run-session');
  const model = path.join(files, 'opened-model.gguf');
  fs.writeFileSync(model, gguf());
  // Relative to its working folder, as a file manager may pass it.
  const second = spawn(APP, ['opened-model.gguf'], { cwd: files, env: wd.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  second.stdout.on('data', (d) => (output += d));
  second.stderr.on('data', (d) => (output += d));
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => (second.kill('SIGKILL'), reject(new Error(`the second launch did not quit:\n${output}`))), 30000);
    second.on('exit', (c) => (clearTimeout(timer), resolve(c)));
  });
  assert.equal(code, 0, output);
  await wd.until('the opened file in the first window', async () => (await rowIds()).includes('local/opened-model.gguf'));
  const outcome = await wd.execute('return document.querySelector("[data-testid=import-outcome]")?.dataset.status');
  assert.equal(outcome, 'imported');
  saveArtifact('instance-opened-file.png', await wd.paintedScreenshot());
});

test('a model another program puts in a library folder shows without a refresh', async () => {
  await wd.click(await wd.one('[data-testid="library-tab"]'));
  fs.mkdirSync(path.join(library, 'team'));
  fs.writeFileSync(path.join(library, 'team/.watched.gguf.part'), gguf());
  fs.renameSync(path.join(library, 'team/.watched.gguf.part'), path.join(library, 'team/watched.gguf'));
  await wd.until('the new model in the window', async () => (await rowIds()).some((id) => id.endsWith('team/watched.gguf')), 10000);
  const log = fs.readdirSync(path.join(data, 'dev.model-manager.app/logs')).map((f) => fs.readFileSync(path.join(data, 'dev.model-manager.app/logs', f), 'utf8')).join('');
  // The cache, the app's models folder and the library folder, each watched (not polled).
  assert.match(log, /watching the library's folders with inotify folders=3 complete=true/);
});

test('the System view shows the log folder and copies the diagnostics, log lines included', async () => {
  await wd.click(await wd.one('[data-testid="storage-tab"]'));
  const logs = path.join(data, 'dev.model-manager.app/logs');
  await wd.until('the log folder', async () => (await wd.innerText('[data-testid="log-folder"]')) === logs);
  await wd.click(await wd.one('[data-testid="copy-diagnostics"]'));
  const text = await wd.until('the diagnostics', async () =>
    wd.execute('return document.querySelector("[data-testid=diagnostics-text]")?.value ?? null'));
  for (const expected of ['Model Manager 0.1.0', `Logs: ${logs}`, 'Hub token: not set', 'the window is ready', 'a second launch handed over']) {
    assert.ok(text.includes(expected), `${expected} is not in the diagnostics:\n${text}`);
  }
  assert.match(await wd.innerText('[data-testid="diagnostics-note"]'), /Copied to the clipboard/);
  // The desktop's clipboard holds the same text.
  const clipboard = execFileSync('xclip', ['-o', '-selection', 'clipboard'], { env: wd.env, timeout: 5000 }).toString();
  assert.equal(clipboard, text);
  saveArtifact('system-diagnostics.png', await wd.paintedScreenshot());
});
