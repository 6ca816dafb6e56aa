// Starts what an end-to-end test needs and stops all of it: a private Xvfb display, tauri-driver (which runs
// WebKitWebDriver, which runs the app), and temporary HOME/XDG folders so the app writes nothing of the user's.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebDriver } from './webdriver.mjs';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const APP = process.env.MM_APP_BIN ?? path.join(ROOT, 'target/debug/model-manager');
export const FAKE_HUB = process.env.MM_FAKE_HUB_BIN ?? path.join(ROOT, 'target/debug/fake-hub');
export const ARTIFACTS = path.join(ROOT, 'tests/e2e/artifacts');

const children = [];

function start(cmd, args, env) {
  const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  child.output = () => output;
  children.push(child);
  return child;
}

async function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitForPort(port, child, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${child.spawnfile} exited early:\n${child.output()}`);
    const open = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.end(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`port ${port} did not open:\n${child.output()}`);
}

/** Xvfb on a free display number, reported by Xvfb itself through -displayfd. */
async function startXvfb(env) {
  const xvfb = start('Xvfb', ['-displayfd', '1', '-screen', '0', '1280x800x24', '-nolisten', 'tcp'], env);
  const display = await new Promise((resolve, reject) => {
    let buffer = '';
    xvfb.stdout.on('data', (d) => {
      buffer += d;
      if (buffer.includes('\n')) resolve(`:${buffer.trim()}`);
    });
    xvfb.on('exit', () => reject(new Error(`Xvfb exited:\n${xvfb.output()}`)));
  });
  return display;
}

/**
 * Starts the fake hub binary serving one generated repo (`bench/model`: a config.json and `files` LFS files of
 * `fileMb` MiB each), optionally throttled; returns its endpoint for HF_ENDPOINT.
 */
/** Like startFakeHub, with a fake Ollama beside it: resolves to `{ endpoint, ollama }` (ollama is its host). */
export async function startFakeHubAndOllama(options = {}) {
  if (!fs.existsSync(FAKE_HUB)) throw new Error(`${FAKE_HUB} is not built: run scripts/test first`);
  const args = ['--files', String(options.files ?? 1), '--file-mb', String(options.fileMb ?? 1), '--ollama'];
  const hub = start(FAKE_HUB, args, process.env);
  return new Promise((resolve, reject) => {
    let buffer = '';
    hub.stdout.on('data', (d) => {
      buffer += d;
      const lines = buffer.split('\n');
      if (lines.length >= 3) resolve({ endpoint: lines[0].trim(), ollama: lines[1].replace('ollama ', '').trim() });
    });
    hub.on('exit', () => reject(new Error(`fake-hub exited:\n${hub.output()}`)));
  });
}

export async function startFakeHub({ files = 2, fileMb = 4, throttle, discover = false, xet = false } = {}) {
  if (!fs.existsSync(FAKE_HUB)) throw new Error(`${FAKE_HUB} is not built: run scripts/test first`);
  const args = ['--files', String(files), '--file-mb', String(fileMb)];
  if (throttle) args.push('--throttle', String(throttle));
  if (discover) args.push('--discover');
  if (xet) args.push('--xet');
  const hub = start(FAKE_HUB, args, process.env);
  const endpoint = await new Promise((resolve, reject) => {
    let buffer = '';
    hub.stdout.on('data', (d) => {
      buffer += d;
      if (buffer.includes('\n')) resolve(buffer.split('\n')[0].trim());
    });
    hub.on('exit', () => reject(new Error(`fake-hub exited:\n${hub.output()}`)));
  });
  return endpoint;
}

/** A `mm serve` on loopback over a cache of its own (another machine, for the window to drive): its URL and cache. */
export async function startServe(endpoint) {
  const MM = path.join(ROOT, 'target/debug/mm');
  if (!fs.existsSync(MM)) throw new Error(`${MM} is not built: run scripts/test first`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-serve-'));
  const env = {
    PATH: process.env.PATH,
    HOME: home,
    XDG_DATA_HOME: path.join(home, 'data'),
    HF_HUB_CACHE: path.join(home, 'cache'),
    HF_ENDPOINT: endpoint,
    MM_KEYRING: '0',
    OLLAMA_HOST: '127.0.0.1:9',
  };
  const serve = start(MM, ['serve', '--listen', '127.0.0.1:0', '--json'], env);
  const url = await new Promise((resolve, reject) => {
    let buffer = '';
    serve.stdout.on('data', (d) => {
      buffer += d;
      if (buffer.includes('\n')) resolve(JSON.parse(buffer.split('\n')[0]).listening);
    });
    serve.on('exit', () => reject(new Error(`mm serve exited:\n${serve.output()}`)));
  });
  return { url, cache: env.HF_HUB_CACHE, home };
}

/**
 * Launches the app with `env` added to a clean temporary environment and returns a WebDriver session on it.
 */
export async function launchApp(extraEnv = {}, { tray = false } = {}) {
  if (!fs.existsSync(APP)) throw new Error(`${APP} is not built: run scripts/test (or cargo build) first`);
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mm-e2e-home-'));
  const env = {
    PATH: `${path.join(os.homedir(), '.cargo/bin')}:${process.env.PATH}`,
    HOME: home,
    XDG_DATA_HOME: path.join(home, 'data'),
    XDG_CONFIG_HOME: path.join(home, 'config'),
    XDG_CACHE_HOME: path.join(home, 'cache'),
    XDG_RUNTIME_DIR: home,
    LANG: 'C.UTF-8',
    ...extraEnv,
  };
  env.DISPLAY = await startXvfb(env);
  if (tray) {
    // An XEmbed tray host, so the app's tray icon has somewhere to live.
    start('trayer', ['--edge', 'top', '--align', 'right', '--widthtype', 'pixel', '--width', '120', '--height', '32',
      '--transparent', 'false', '--tint', '0xdddddd'], env);
    await new Promise((r) => setTimeout(r, 500));
  }
  const port = await freePort();
  const nativePort = await freePort();
  const driver = start('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], env);
  // tauri-driver listens at once but forwards a new session to WebKitWebDriver, which may still be starting (a cold
  // machine takes seconds): wait for both ports, and retry a session the native driver dropped unanswered.
  await waitForPort(port, driver);
  await waitForPort(nativePort, driver);
  const wd = new WebDriver(`http://127.0.0.1:${port}`);
  for (let attempt = 1; ; attempt++) {
    try {
      await wd.start(APP);
      break;
    } catch (e) {
      if (attempt >= 5 || !(e instanceof TypeError)) throw e;
      await new Promise((r) => setTimeout(r, 500 * attempt));
    }
  }
  wd.home = home;
  wd.env = env;
  return wd;
}

/** Ends the session and kills every process group the harness started. */
export async function shutdown(wd) {
  if (wd) await wd.end();
  for (const child of children.reverse()) {
    try {
      process.kill(-child.pid, 'SIGTERM');
    } catch {}
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  }
  children.length = 0;
  // The runtime host may still be closing its log for a moment after the app quits.
  if (wd?.home) fs.rmSync(wd.home, { recursive: true, force: true, maxRetries: 20, retryDelay: 100 });
}

/** A minimal GGUF: magic, version 3, no tensors, one key (general.architecture = llama). */
export function gguf() {
  const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b; };
  const str = (s) => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s)]);
  return Buffer.concat([Buffer.from('GGUF'), u32(3), u64(0), u64(1), str('general.architecture'), u32(8), str('llama')]);
}

export function saveArtifact(name, bytes) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  fs.writeFileSync(file, bytes);
  return file;
}
