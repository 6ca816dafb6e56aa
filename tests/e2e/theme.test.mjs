// Light and dark themes follow the system: the same window under a dark GTK theme is dark.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { launchApp, saveArtifact, shutdown } from './harness.mjs';

let wd;
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-theme-'));

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
});

const background = () => wd.execute('return getComputedStyle(document.documentElement).backgroundColor');

test('a dark system theme gives a dark window', async () => {
  wd = await launchApp({ HF_HUB_CACHE: cache, GTK_THEME: 'Adwaita:dark' });
  await wd.one('h1');
  assert.equal(await wd.execute('return matchMedia("(prefers-color-scheme: dark)").matches'), true);
  assert.equal(await background(), 'rgb(23, 23, 26)');
  saveArtifact('dark.png', await wd.paintedScreenshot());
  await shutdown(wd);

  wd = await launchApp({ HF_HUB_CACHE: cache, GTK_THEME: 'Adwaita' });
  await wd.one('h1');
  assert.equal(await background(), 'rgb(255, 255, 255)');
});
