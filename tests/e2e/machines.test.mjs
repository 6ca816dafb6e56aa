// The window drives another machine: a second `mm serve` on loopback is added in Settings → Machines, chosen in
// the header, and a download started there from the window lands in that machine's cache while the window
// follows its progress through that machine's events.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchApp, saveArtifact, shutdown, startFakeHub, startServe } from './harness.mjs';

let wd;
let cache;
let other;

before(async () => {
  cache = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-machines-'));
  // 2 x 6 MiB at 4 MB/s: progress is visible before the end.
  const endpoint = await startFakeHub({ files: 2, fileMb: 6, throttle: 4_000_000 });
  other = await startServe(endpoint);
  wd = await launchApp({ HF_HUB_CACHE: cache, HF_ENDPOINT: endpoint, MM_KEYRING: '0' });
});

after(async () => {
  await shutdown(wd);
  fs.rmSync(cache, { recursive: true, force: true });
  if (other) fs.rmSync(other.home, { recursive: true, force: true });
});

test('add another machine, switch to it, download there and watch it finish', async () => {
  await wd.click(await wd.one('[data-testid="settings-tab"]'));
  // An address nothing answers at is refused, with why.
  await wd.type(await wd.one('[data-testid="machine-url"]'), 'http://127.0.0.1:9');
  await wd.click(await wd.one('[data-testid="add-machine"]'));
  assert.match(await wd.text(await wd.one('[data-testid="machine-error"]')), /cannot be reached/);
  await wd.execute("document.querySelector('[data-testid=machine-url]').value = ''");
  await wd.type(await wd.one('[data-testid="machine-name"]'), 'gpu-box');
  await wd.type(await wd.one('[data-testid="machine-url"]'), other.url);
  await wd.click(await wd.one('[data-testid="add-machine"]'));
  await wd.until('the machine listed', async () => /gpu-box/.test(await wd.innerText('[data-testid="machine-list"]')));

  // Choose it in the header.
  await wd.one('[data-testid="machine-switcher"]');
  await wd.execute(
    "const s = document.querySelector('[data-testid=machine-switcher]'); s.value = arguments[0]; s.dispatchEvent(new Event('change', { bubbles: true }));",
    [other.url],
  );
  saveArtifact('machines-switched.png', await wd.paintedScreenshot());

  await wd.click(await wd.one('[data-testid="downloads-tab"]'));
  await wd.type(await wd.one('[data-testid="repo-input"]'), 'bench/model');
  await wd.click(await wd.one('[data-testid="preview-button"]'));
  assert.equal(await wd.text(await wd.one('[data-testid="preview-total"]')), '3 files · 12.6 MB');
  await wd.click(await wd.one('[data-testid="download-button"]'));
  const row = await wd.one('[data-testid="download-row"]');
  await wd.until('bytes moving there', async () => {
    const text = await wd.text(await wd.one('[data-testid="download-bytes"]'));
    return /^(?!0 B)[\d.]+ [kMG]?B \/ 12.6 MB/.test(text) && !text.includes('100%');
  });
  saveArtifact('machines-download-progress.png', await wd.paintedScreenshot());
  await wd.until('completion there', async () => (await wd.attribute(row, 'data-state')) === 'completed', 60000);

  // The files are on the other machine, not here.
  assert.ok(fs.existsSync(path.join(other.cache, 'models--bench--model')), 'in the other machine\'s cache');
  assert.ok(!fs.existsSync(path.join(cache, 'models--bench--model')), 'and not in this one');
  // Its library lists the model; this machine's does not.
  await wd.click(await wd.one('[data-testid="library-tab"]'));
  await wd.until('the model in its library', async () => /bench\/model/.test(await wd.innerText('main')));
  saveArtifact('machines-library.png', await wd.paintedScreenshot());
  await wd.execute(
    "const s = document.querySelector('[data-testid=machine-switcher]'); s.value = ''; s.dispatchEvent(new Event('change', { bubbles: true }));",
  );
  await wd.until('this machine again', async () => !/bench\/model/.test(await wd.innerText('main')));
});
