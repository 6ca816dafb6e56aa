// The installed .deb, as apt left it (run by scripts/test after `apt-get install ./model-manager_*.deb`, with
// MM_APP_BIN=/usr/bin/model-manager): both programs on PATH, a desktop entry that opens model files, the MIME types
// the desktop tells them by, and the installed app's window drawing the starter models on a first start.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { APP, launchApp, saveArtifact, shutdown } from '../harness.mjs';

let wd;
after(async () => shutdown(wd));

test('the package installs both programs and a desktop entry that opens model files', () => {
  assert.equal(APP, '/usr/bin/model-manager', 'run with MM_APP_BIN=/usr/bin/model-manager');
  assert.match(execFileSync('/usr/bin/mm', ['--version']).toString(), /^mm \d+\.\d+\.\d+/);
  const owned = execFileSync('dpkg-query', ['-L', 'model-manager']).toString().split('\n');
  for (const file of ['/usr/bin/model-manager', '/usr/bin/mm', '/usr/share/applications/Model Manager.desktop', '/usr/share/mime/packages/model-manager.xml']) {
    assert.ok(owned.includes(file), `${file} is not in the package`);
  }
  const entry = fs.readFileSync('/usr/share/applications/Model Manager.desktop', 'utf8');
  assert.match(entry, /^Exec=model-manager %F$/m);
  assert.match(entry, /^MimeType=application\/x-gguf;application\/x-safetensors/m);
  // dpkg's trigger ran update-mime-database: the desktop knows the files by name and by content.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-mime-'));
  fs.writeFileSync(path.join(dir, 'a.gguf'), 'GGUF\x03\x00\x00\x00');
  fs.writeFileSync(path.join(dir, 'b.safetensors'), Buffer.alloc(16));
  const type = (f) => execFileSync('xdg-mime', ['query', 'filetype', path.join(dir, f)]).toString().trim();
  assert.equal(type('a.gguf'), 'application/x-gguf');
  assert.equal(type('b.safetensors'), 'application/x-safetensors');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the installed app opens its window, on the starter models on a first start', async () => {
  wd = await launchApp();
  await wd.waitFor('[data-testid="library-tab"]');
  assert.equal(await wd.execute('return document.title'), 'Model Manager');
  // The catalog comes from the core, through a command: the installed app's UI and core talk.
  await wd.until('the starter models', async () => (await wd.innerText('body')).includes('Qwen2.5 0.5B Instruct'));
  saveArtifact('installed-app.png', await wd.paintedScreenshot());
});
