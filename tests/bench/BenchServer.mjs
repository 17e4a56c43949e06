/**
 * BenchServer -- the reference server (demo/server/createServer) with two additions the
 * benchmark needs and the demo does not: the moment a request ARRIVES (before the fault
 * plan's latency), and a "hold" mode in which a request is held open and, if the client
 * goes away meanwhile (its worker was stopped), is recorded as not delivered (status 0)
 * instead of being applied later -- the way a request cut off on the wire is lost.
 * The batch endpoint (POST /api/_batch) is the reference API's own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createServer } from '../../demo/server/createServer.js';
import { ReferenceApi } from '../../demo/server/ReferenceApi.js';

export class BenchApi extends ReferenceApi {
  constructor(options) {
    super(options);
    this.arrivalListeners = new Set(); // fn(path, tMs)
    this.holdMs = 0; // > 0: hold each request this long, drop it if the client left
    this.staticDir = null; // GET /api/_static/<file>: served cacheable (see handle)
  }

  async handle(req, res, url) {
    if (url.pathname.startsWith('/api/_static/') && this.staticDir) return this._static(res, url);
    const t = performance.now();
    for (const fn of this.arrivalListeners) fn(url.pathname, t);
    if (this.holdMs > 0) {
      let gone = false;
      req.socket.once('close', () => {
        gone = true;
      });
      const deadline = Date.now() + this.holdMs;
      while (!gone && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (gone || req.socket.destroyed) {
        this._record(req.method, url.pathname, req.headers['idempotency-key'] ?? null, 0, false);
        return true;
      }
    }
    return super.handle(req, res, url);
  }

  /**
   * The demo server sends every static file `no-store` (a rebuilt module is always what
   * the browser gets). A deployed app serves its hashed wasm with a long max-age, which is
   * what lets Chromium keep the compiled code; the bench serves the wasm that way here.
   */
  _static(res, url) {
    const name = url.pathname.slice('/api/_static/'.length);
    if (!/^[a-z0-9.-]+\.wasm$/.test(name)) {
      res.writeHead(404).end();
      return true;
    }
    let buf;
    try {
      buf = readFileSync(join(this.staticDir, name));
    } catch {
      res.writeHead(404).end();
      return true;
    }
    res.writeHead(200, {
      'content-type': 'application/wasm',
      'content-length': buf.length,
      'cache-control': 'public, max-age=31536000, immutable',
    });
    res.end(buf);
    return true;
  }

  /** Resolves at the first arrival under `prefix` (bounded); value: arrival time (ms). */
  nextArrival(prefix, timeoutMs = 30000) {
    return new Promise((resolve, reject) => {
      const fn = (path, t) => {
        if (!path.startsWith(prefix)) return;
        this.arrivalListeners.delete(fn);
        clearTimeout(timer);
        resolve(t);
      };
      const timer = setTimeout(() => {
        this.arrivalListeners.delete(fn);
        reject(new Error(`no request under ${prefix} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.arrivalListeners.add(fn);
    });
  }

  /** Distinct item paths under prefix answered 2xx so far. */
  delivered(prefix) {
    const s = new Set();
    for (const e of this.log) if (e.path.startsWith(prefix) && e.status >= 200 && e.status < 300) s.add(e.path);
    return s;
  }

  /** Resolves once `n` distinct paths under prefix were answered 2xx; value: time (ms). */
  whenDelivered(prefix, n, timeoutMs) {
    return new Promise((resolve, reject) => {
      const seen = this.delivered(prefix);
      if (seen.size >= n) return resolve(performance.now());
      const fn = (e) => {
        if (!e.path.startsWith(prefix) || e.status < 200 || e.status >= 300) return;
        seen.add(e.path);
        if (seen.size >= n) {
          this.listeners.delete(fn);
          clearTimeout(timer);
          resolve(performance.now());
        }
      };
      const timer = setTimeout(() => {
        this.listeners.delete(fn);
        reject(new Error(`only ${seen.size}/${n} delivered under ${prefix} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.listeners.add(fn);
    });
  }

  /** Requests under prefix so far (any status). */
  requests(prefix) {
    return this.log.filter((e) => e.path.startsWith(prefix));
  }
}

export async function startBenchServer(siteDir) {
  const api = new BenchApi();
  api.staticDir = join(siteDir, 'wasm');
  const srv = await createServer({ mounts: { '/': siteDir }, api });
  return { ...srv, api };
}
