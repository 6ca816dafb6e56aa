// A minimal W3C WebDriver client over fetch, enough to drive the app through tauri-driver: sessions, finding
// elements, reading text, clicking, running scripts and taking screenshots.
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriver {
  constructor(url) {
    this.url = url;
    this.session = null;
  }

  async request(method, path, body) {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await res.json();
    if (!res.ok || (json.value && json.value.error)) {
      throw new Error(`WebDriver ${method} ${path} failed: ${JSON.stringify(json.value)}`);
    }
    return json.value;
  }

  async start(application) {
    const value = await this.request('POST', '/session', {
      capabilities: { alwaysMatch: { browserName: 'wry', 'tauri:options': { application } } },
    });
    this.session = value.sessionId;
  }

  async end() {
    if (this.session) await this.request('DELETE', `/session/${this.session}`).catch(() => {});
    this.session = null;
  }

  s(path) {
    return `/session/${this.session}${path}`;
  }

  async findAll(css) {
    const found = await this.request('POST', this.s('/elements'), { using: 'css selector', value: css });
    return found.map((e) => e[ELEMENT]);
  }

  async text(element) {
    return this.request('GET', this.s(`/element/${element}/text`));
  }

  async click(element) {
    return this.request('POST', this.s(`/element/${element}/click`), {});
  }

  /**
   * The `innerText` of the first match of `css`. WebKitWebDriver's element text leaves out text in
   * `overflow: hidden` boxes with an ellipsis even when it is painted in full; innerText is what the user sees.
   */
  async innerText(css) {
    return this.execute('return document.querySelector(arguments[0]).innerText', [css]);
  }

  async type(element, text) {
    return this.request('POST', this.s(`/element/${element}/value`), { text });
  }

  async attribute(element, name) {
    return this.request('GET', this.s(`/element/${element}/attribute/${name}`));
  }

  /** The first element matching `css`, waiting for it. */
  async one(css, timeoutMs) {
    return (await this.waitFor(css, timeoutMs))[0];
  }

  /** Polls `check` (async, returning a truthy value when done) until it passes. */
  async until(what, check, timeoutMs = 30000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check().catch(() => undefined);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async execute(script, args = []) {
    return this.request('POST', this.s('/execute/sync'), { script, args });
  }

  async screenshot() {
    return Buffer.from(await this.request('GET', this.s('/screenshot')), 'base64');
  }

  /**
   * A screenshot once the window has painted: the DOM can be ready a frame before WebKit draws it, and a blank
   * surface compresses to a tiny PNG, so this waits for two animation frames and retries while the image is tiny.
   */
  async paintedScreenshot(minBytes = 5000, tries = 20) {
    let png;
    for (let i = 0; i < tries; i++) {
      await this.request('POST', this.s('/execute/async'), {
        script: 'const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done()));',
        args: [],
      });
      png = await this.screenshot();
      if (png.length >= minBytes) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return png;
  }

  /** Polls until `css` matches at least one element, and returns the matches. */
  async waitFor(css, timeoutMs = 15000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.findAll(css);
      if (found.length > 0) return found;
      if (Date.now() > deadline) throw new Error(`nothing matched ${css} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
