/**
 * CdpBrowser -- Debian's Chromium driven over a plain DevTools pipe (--remote-debugging-pipe).
 *
 * Why not Playwright's page API: Playwright auto-attaches to every worker, holds its start
 * until it has instrumented it and enables network events on it. That is right for tests
 * and wrong for timings of a service worker (cold start, 1000 fetches). A raw pipe attaches
 * only to what the benchmark asks for, so both libraries run exactly as in a user's browser.
 * playwright-core still supplies the executable path convention and nothing is downloaded.
 *
 * Every wait is bounded; close() kills only the process this class started.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = process.env.BGS_CHROMIUM ?? '/usr/bin/chromium';

const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-extensions',
  '--disable-features=Translate,MediaRouter,OptimizationHints',
  '--remote-debugging-pipe',
];

export class CdpBrowser {
  static async launch({ timeoutMs = 20000 } = {}) {
    const profile = mkdtempSync(join(tmpdir(), 'bgs-bench-profile-'));
    const proc = spawn(CHROMIUM, [...ARGS, `--user-data-dir=${profile}`, 'about:blank'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    proc.stderr.on('data', () => {}); // drain; Chromium is chatty
    const browser = new CdpBrowser(proc, profile);
    await browser.send('Target.setDiscoverTargets', { discover: true }, undefined, timeoutMs);
    return browser;
  }

  constructor(proc, profile) {
    this.proc = proc;
    this.profile = profile;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Set(); // fn(method, params, sessionId)
    this.targets = new Map(); // targetId -> targetInfo
    this.closed = false;
    let buf = Buffer.alloc(0);
    proc.stdio[4].on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      let end;
      while ((end = buf.indexOf(0)) >= 0) {
        const msg = JSON.parse(buf.subarray(0, end).toString('utf8'));
        buf = buf.subarray(end + 1);
        this._dispatch(msg);
      }
    });
    proc.on('exit', () => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error('chromium exited'));
      this.pending.clear();
    });
  }

  _dispatch(msg) {
    if (msg.id) {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
      return;
    }
    if (msg.method === 'Target.targetCreated' || msg.method === 'Target.targetInfoChanged') {
      this.targets.set(msg.params.targetInfo.targetId, msg.params.targetInfo);
    } else if (msg.method === 'Target.targetDestroyed') {
      this.targets.delete(msg.params.targetId);
    }
    for (const fn of this.listeners) fn(msg.method, msg.params, msg.sessionId);
  }

  send(method, params = {}, sessionId, timeoutMs = 60000) {
    if (this.closed) return Promise.reject(new Error('chromium is closed'));
    const id = this.nextId++;
    const msg = { id, method, params };
    if (sessionId) msg.sessionId = sessionId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, method });
      this.proc.stdio[3].write(JSON.stringify(msg) + '\0');
    });
  }

  /** Resolves with the first event `method` whose params satisfy pred (bounded). */
  waitEvent(method, pred = () => true, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      const fn = (m, params, sessionId) => {
        if (m !== method) return;
        let ok = false;
        try {
          ok = pred(params, sessionId);
        } catch {
          ok = false;
        }
        if (!ok) return;
        this.listeners.delete(fn);
        clearTimeout(timer);
        resolve(params);
      };
      const timer = setTimeout(() => {
        this.listeners.delete(fn);
        reject(new Error(`no ${method} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(fn);
    });
  }

  async attach(targetId) {
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    return sessionId;
  }

  /** Opens a tab at url, waits for its load event, returns {targetId, sessionId}. */
  async openPage(url, timeoutMs = 30000) {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const sessionId = await this.attach(targetId);
    await this.send('Page.enable', {}, sessionId);
    await this.send('Runtime.enable', {}, sessionId);
    const loaded = this.waitEvent('Page.loadEventFired', (_p, s) => s === sessionId, timeoutMs);
    await this.send('Page.navigate', { url }, sessionId);
    await loaded;
    return { targetId, sessionId };
  }

  async closeTarget(targetId) {
    await this.send('Target.closeTarget', { targetId });
  }

  /** Evaluates an expression (awaiting a promise) in a session; returns the value. */
  async evaluate(sessionId, expression, timeoutMs = 300000) {
    const r = await this.send(
      'Runtime.evaluate',
      { expression, awaitPromise: true, returnByValue: true },
      sessionId,
      timeoutMs,
    );
    if (r.exceptionDetails) {
      const d = r.exceptionDetails;
      throw new Error(`evaluate: ${d.exception?.description ?? d.text}`);
    }
    return r.result.value;
  }

  serviceWorkerTargets() {
    return [...this.targets.values()].filter((t) => t.type === 'service_worker');
  }

  async close() {
    if (!this.closed) {
      try {
        await this.send('Browser.close', {}, undefined, 5000);
      } catch {
        // fall through to the kill below
      }
      await new Promise((resolve) => {
        if (this.closed) return resolve();
        const t = setTimeout(() => {
          this.proc.kill('SIGKILL');
          resolve();
        }, 5000);
        this.proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}
