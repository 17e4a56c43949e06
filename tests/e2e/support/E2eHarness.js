/**
 * E2eHarness -- the end-to-end plumbing every tests/e2e suite shares: one reference server
 * (demo/server createServer) serving a fixture directory plus bgsync's sw/ and web/, one
 * Debian Chromium (playwright-core, never a downloaded browser), a fresh browser context
 * per test, and a CDP session to drive service workers (dispatch `sync`, stop a worker).
 *
 *   const h = await E2eHarness.start();            // beforeAll
 *   const s = await h.open('/?sw=concurrency%3D1'); // a page on a fresh context, worker active
 *   await s.call((c) => c.enqueue({...}));         // runs in the page with t.client as `c`
 *   await s.dispatchSync('bgsync:default');
 *   await h.waitFor(() => h.log().length >= 3, 'three requests');
 *   await s.close(); await h.stop();               // afterEach / afterAll
 *
 * `h.reset()` (beforeEach) clears the API's faults, log and data; `h.requests` holds the
 * headers of every API request (Authorization, Idempotency-Key, If-Match, ...).
 *
 * Mounts: '/' → `fixtureDir` (default tests/e2e/fixtures), '/bgsync/sw/' → sw/,
 * '/bgsync/web/' → web/, plus any `mounts` given. The API is under /api with its
 * FaultPlan (`h.api.faults.set({status: 503})`) and request log (`h.log()`).
 *
 * Waiting is always on a condition with a bound (waitFor), never a fixed sleep.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from '../../../demo/server/createServer.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIXTURE_DIR = join(ROOT, 'tests/e2e/fixtures');

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * Polls `predicate` (sync or async) until it returns a truthy value, which it returns.
 * Throws with `what` and the last value seen after `timeoutMs`.
 */
export async function waitFor(predicate, what = 'condition', { timeoutMs = 20_000, intervalMs = 50 } = {}) {
  const until = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await predicate();
    if (last) return last;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export class E2eHarness {
  /** Starts the server and the browser. */
  static async start({ fixtureDir = FIXTURE_DIR, mounts = {}, executablePath = '/usr/bin/chromium', headless = true } = {}) {
    const server = await createServer({
      mounts: {
        '/': fixtureDir,
        '/bgsync/sw/': join(ROOT, 'sw'),
        '/bgsync/web/': join(ROOT, 'web'),
        ...mounts,
      },
    });
    const browser = await chromium.launch({ executablePath, headless, args: CHROMIUM_ARGS });
    return new E2eHarness(server, browser);
  }

  constructor(server, browser) {
    this.server = server;
    this.browser = browser;
    this.url = server.url;
    this.api = server.api;
    this.sessions = new Set();
    // Request headers of every API request, in arrival order (the log keeps no headers).
    this.requests = [];
    this.activeRequests = 0; // API requests being handled right now
    this.maxActiveRequests = 0; // the most at once since the last reset()
    if (typeof this.api?.handle === 'function') {
      const handle = this.api.handle.bind(this.api);
      this.api.handle = (req, res, url) => {
        this.requests.push({ method: req.method, path: url.pathname, headers: { ...req.headers } });
        this.activeRequests++;
        this.maxActiveRequests = Math.max(this.maxActiveRequests, this.activeRequests);
        return Promise.resolve(handle(req, res, url)).finally(() => {
          this.activeRequests--;
        });
      };
    }
  }

  /** Clears faults, the log, the data and the captured request headers. */
  reset() {
    this.api.reset();
    this.requests = [];
    this.maxActiveRequests = 0;
  }

  /** The API's request log: [{seq, method, path, key, status, applied}], in arrival order. */
  log() {
    return this.api.log;
  }

  waitFor(predicate, what, options) {
    return waitFor(predicate, what, options);
  }

  /**
   * Opens `path` in a fresh context (its own storage) and waits until the fixture page
   * reports its worker active and answering (window.bgsTest.ready).
   * @returns {Promise<E2eSession>}
   */
  async open(path = '/', { waitReady = true } = {}) {
    const context = await this.browser.newContext();
    const session = new E2eSession(this, context);
    await session.init(path, { waitReady });
    this.sessions.add(session);
    return session;
  }

  /** Runs body(session) on a fresh session, closes it, and adds the browser's side to a failure. */
  async withSession(path, body, options) {
    const s = await this.open(path, options);
    try {
      return await body(s);
    } catch (err) {
      throw s.annotate(err);
    } finally {
      await s.close();
    }
  }

  async stop() {
    for (const s of this.sessions) await s.close().catch(() => undefined);
    await this.browser?.close().catch(() => undefined);
    await this.server?.close();
  }
}

/** One browser context with a page, a CDP session and the service-worker versions seen. */
export class E2eSession {
  constructor(harness, context) {
    this.harness = harness;
    this.context = context;
    this.versions = new Map(); // versionId -> latest version info from CDP
    this.registrations = new Map(); // registrationId -> registration info
    this.consoleLines = [];
    this.transitions = []; // every version update, in order: {versionId, runningStatus, status}
  }

  async init(path, { waitReady }) {
    this.page = await this.context.newPage();
    this._watchConsole(this.page);
    this.cdp = await this.context.newCDPSession(this.page);
    this.cdp.on('ServiceWorker.workerVersionUpdated', ({ versions }) => {
      for (const v of versions) {
        this.versions.set(v.versionId, v);
        this.transitions.push({ versionId: v.versionId, runningStatus: v.runningStatus, status: v.status });
      }
    });
    this.cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      for (const r of registrations) this.registrations.set(r.registrationId, r);
    });
    this.cdp.on('ServiceWorker.workerErrorReported', ({ errorMessage }) => {
      this.consoleLines.push(`[sw error] ${errorMessage.errorMessage} ${errorMessage.sourceURL}:${errorMessage.lineNumber}`);
    });
    await this.cdp.send('ServiceWorker.enable');
    await this.goto(path, { waitReady });
  }

  _watchConsole(page) {
    page.on('console', (m) => this.consoleLines.push(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => this.consoleLines.push(`[page error] ${e.message}`));
  }

  /** Navigates the session's page and (by default) waits for the fixture to be ready. */
  async goto(path, { waitReady = true, page = this.page } = {}) {
    await page.goto(new URL(path, this.harness.url).href);
    if (waitReady) await this.ready(page);
  }

  async ready(page = this.page) {
    await page.waitForFunction(() => window.bgsTest && window.bgsTest.ready, null, { timeout: 20_000 });
    await page.evaluate(() => window.bgsTest.ready);
  }

  /** Opens a second tab in the same context (same origin storage, same worker). */
  async openTab(path = '/') {
    const page = await this.context.newPage();
    this._watchConsole(page);
    await this.goto(path, { page });
    return page;
  }

  /** Reloads the page and waits until its client is ready again. */
  async reload({ page = this.page } = {}) {
    await page.reload();
    await this.ready(page);
  }

  /**
   * Runs fn(client, arg) inside the page, where client is the fixture's SyncClient.
   * Errors come back as {error: {name, code, message}} rather than a thrown string, so
   * tests can assert the code.
   */
  async call(fn, arg, { page = this.page } = {}) {
    const out = await page.evaluate(
      async ([src, a]) => {
        const f = (0, eval)(`(${src})`);
        try {
          return { value: await f(window.bgsTest.client, a) };
        } catch (e) {
          return { error: { name: e?.name, code: e?.code, message: e?.message } };
        }
      },
      [fn.toString(), arg],
    );
    if (out.error) {
      const err = new Error(`${out.error.name}: ${out.error.message}`);
      Object.assign(err, { code: out.error.code, bgsyncName: out.error.name });
      throw err;
    }
    return out.value;
  }

  /** Like call(), but returns {value} or {error} without throwing. */
  async attempt(fn, arg, options) {
    try {
      return { value: await this.call(fn, arg, options) };
    } catch (err) {
      return { error: { code: err.code, name: err.bgsyncName, message: err.message } };
    }
  }

  /** Events the fixture page recorded from its SyncClient ({type, detail}). */
  events({ page = this.page } = {}) {
    return page.evaluate(() => window.bgsTest.events);
  }

  /** Sets the worker's test clock offset (engine time = real time + offsetMs). */
  setClockOffset(offsetMs, { page = this.page } = {}) {
    return page.evaluate((ms) => window.bgsTest.setClockOffset(ms), offsetMs);
  }

  /** The worker's status as SyncClient reports it. */
  status(queue) {
    return this.call((c, q) => c.status(q ?? undefined), queue ?? null);
  }

  /** The active (or activating) version of this origin's registration. */
  activeVersion() {
    return [...this.versions.values()].find(
      (v) => (v.status === 'activated' || v.status === 'activating') && v.scriptURL.startsWith(this.harness.url),
    );
  }

  /** Waits until a version matching `predicate` is known; returns it. */
  waitForVersion(predicate = (v) => v.status === 'activated', what = 'an activated worker version') {
    return waitFor(() => [...this.versions.values()].find(predicate), what);
  }

  /** Fires a `sync` event at the active worker, the way the browser does. */
  async dispatchSync(tag, { lastChance = false } = {}) {
    const v = await this.waitForVersion((x) => x.status === 'activated' && x.scriptURL.startsWith(this.harness.url));
    await this.cdp.send('ServiceWorker.dispatchSyncEvent', {
      origin: this.harness.url,
      registrationId: v.registrationId,
      tag,
      lastChance,
    });
  }

  /** Fires a `periodicsync` event at the active worker. */
  async dispatchPeriodicSync(tag) {
    const v = await this.waitForVersion((x) => x.status === 'activated' && x.scriptURL.startsWith(this.harness.url));
    await this.cdp.send('ServiceWorker.dispatchPeriodicSyncEvent', {
      origin: this.harness.url,
      registrationId: v.registrationId,
      tag,
    });
  }

  /** Delivers a push message (its data a string) to the active worker. */
  async deliverPush(data) {
    const v = await this.waitForVersion((x) => x.status === 'activated' && x.scriptURL.startsWith(this.harness.url));
    await this.cdp.send('ServiceWorker.deliverPushMessage', { origin: this.harness.url, registrationId: v.registrationId, data });
  }

  /**
   * Kills the active worker (like the browser does to an idle worker) and waits until it is
   * stopped. `ifRunning`: only if it runs now (nothing to wait for when it is stopped).
   */
  async stopWorker({ ifRunning = false } = {}) {
    const running = (x) => x.status === 'activated' && x.runningStatus === 'running';
    if (ifRunning && ![...this.versions.values()].some(running)) return null;
    const v = await this.waitForVersion(running, 'a running worker');
    const from = this.transitions.length;
    await this.cdp.send('ServiceWorker.stopWorker', { versionId: v.versionId });
    // It may start again at once (a message, a sync); seeing 'stopped' once is what counts.
    await waitFor(
      () => this.transitions.slice(from).some((t) => t.versionId === v.versionId && t.runningStatus === 'stopped'),
      'the worker to stop',
    );
    return v;
  }

  /** The console and errors of pages and workers, for failure messages. */
  diagnostics() {
    return this.consoleLines.join('\n');
  }

  /**
   * Adds the browser's side (console, worker version changes) to a failure. Into the stack
   * too: Jest prints the stack, which was taken when the error was made.
   */
  annotate(err) {
    const versions = this.transitions.map((t) => `${t.versionId}:${t.status}/${t.runningStatus}`).join(' ');
    const extra = `\n--- browser ---\n${this.diagnostics()}\n--- worker versions ---\n${versions}`;
    if (err && typeof err === 'object') {
      err.message += extra;
      if (typeof err.stack === 'string') err.stack += extra;
    }
    return err;
  }

  async close() {
    this.harness.sessions.delete(this);
    await this.context.close().catch(() => undefined);
  }
}
