// The system tray under Xvfb (trayer as the tray host): the menu lists installed models by type with the active
// one checked, and choosing another one there switches the active model: active.json and the window follow.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, launchApp, saveArtifact, shutdown } from './harness.mjs';

const MM = path.join(ROOT, 'target/debug/mm');
const sha256 = (b) => crypto.createHash('sha256').update(b).digest('hex');

function addModel(cache, name, commit) {
  const repo = path.join(cache, `models--acme--${name}`);
  const snapshot = path.join(repo, 'snapshots', commit);
  fs.mkdirSync(path.join(repo, 'blobs'), { recursive: true });
  fs.mkdirSync(snapshot, { recursive: true });
  fs.mkdirSync(path.join(repo, 'refs'), { recursive: true });
  for (const [file, content] of [['config.json', '{"architectures":["LlamaForCausalLM"]}'], ['model.gguf', `weights of ${name}`]]) {
    fs.writeFileSync(path.join(repo, 'blobs', sha256(content)), content);
    fs.symlinkSync(`../../blobs/${sha256(content)}`, path.join(snapshot, file));
  }
  fs.writeFileSync(path.join(repo, 'refs', 'main'), commit);
}

let wd;
let cache;
let data;

before(async () => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-tray-'));
  addModel(cache, 'alpha', 'a'.repeat(40));
  addModel(cache, 'beta', 'b'.repeat(40));
  wd = await launchApp({ HF_HUB_CACHE: cache }, { tray: true });
  data = path.join(wd.home, 'data');
  await wd.waitFor('[data-testid="model-row"]');
  // Activated from the CLI before the first look at the tray.
  execFileSync(MM, ['activate', 'acme/alpha'], { env: { ...process.env, HF_HUB_CACHE: cache, XDG_DATA_HOME: data } });
  await wd.until('the window to follow the CLI', async () => (await wd.findAll('[data-testid="active-strip"]')).length > 0);
});

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const x = (args) => execFileSync(args[0], args.slice(1), { env: wd.env }).toString();

test('the tray menu switches the active model', async () => {
  // trayer has an unmapped leader window too: the strip is the one 120 px wide, as started.
  const g = x(['xdotool', 'search', '--class', 'trayer'])
    .trim()
    .split('\n')
    .map((w) => Object.fromEntries(x(['xdotool', 'getwindowgeometry', '--shell', w]).trim().split('\n').map((l) => l.split('='))))
    .find((geometry) => geometry.WIDTH === '120');
  assert.ok(g, 'the tray host is on screen');
  // The icon sits at the right end of trayer's strip.
  const iconX = Number(g.X) + Number(g.WIDTH) - 16;
  const iconY = Number(g.Y) + 16;
  // Move first, then press and release: a bare `click` right after the move is lost by the tray host.
  x(['xdotool', 'mousemove', String(iconX), String(iconY)]);
  await sleep(300);
  x(['xdotool', 'mousedown', '1']);
  await sleep(100);
  x(['xdotool', 'mouseup', '1']);
  await sleep(1200);
  // The menu opens below the icon; its first row is "Text generation", whose submenu opens to the left with
  // acme/alpha (checked) then acme/beta, 25 px apart. Keys sent with xdotool do not reach GTK's menu grab under
  // Xvfb, so the pointer does it: onto the row, along it into the submenu, down one row.
  const row = iconY + 31;
  x(['xdotool', 'mousemove', String(iconX - 112), String(row)]);
  await sleep(800);
  x(['xdotool', 'mousemove', String(iconX - 252), String(row)]);
  await sleep(400);
  x(['xdotool', 'mousemove', String(iconX - 252), String(row + 25)]);
  await sleep(400);
  const shot = path.join(os.tmpdir(), `mm-tray-${process.pid}.png`);
  execFileSync('import', ['-window', 'root', shot], { env: wd.env });
  saveArtifact('tray-menu.png', fs.readFileSync(shot));
  x(['xdotool', 'click', '1']);

  const manifest = path.join(data, 'dev.model-manager.app', 'active.json');
  await wd.until('the tray click to activate acme/beta', async () => JSON.parse(fs.readFileSync(manifest, 'utf8'))['text-generation']?.id === 'acme/beta', 5000);
  await wd.until('the window to show it', async () => /acme\/beta/.test(await wd.text(await wd.one('[data-testid="active-strip"]'))), 5000);
});
