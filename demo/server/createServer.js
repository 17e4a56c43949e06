/**
 * createServer -- one HTTP server on 127.0.0.1 for the demo, the end-to-end tests and the
 * benchmarks: static files from a set of mounts, the reference API under /api, and
 * server controls under /__control (faults, log[?since=seq], reset, edit) that the demo's
 * panel and tests use. Nothing is cached, so a rebuilt module is always what the browser gets.
 */
import http from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { ReferenceApi, etag, mergePatch } from './ReferenceApi.js';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.webmanifest': 'application/manifest+json',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/**
 * @param {{host?: string, port?: number, mounts: Record<string, string>, api?: ReferenceApi}} options
 *   mounts: URL prefix ('/', '/bgsync/sw/') -> directory; the longest prefix wins.
 * @returns {Promise<{url: string, api: ReferenceApi, server: http.Server, close: () => Promise<void>}>}
 */
export async function createServer({ host = '127.0.0.1', port = 0, mounts, api = new ReferenceApi() }) {
  const prefixes = Object.keys(mounts).sort((a, b) => b.length - a.length);
  // Path prefixes whose requests get their connection reset, as if the network were gone
  // for them (tests: a worker that must start from what it cached).
  const unreachable = new Set();
  const server = http.createServer((req, res) => {
    route(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err?.stack ?? err));
    });
  });

  async function route(req, res) {
    const url = new URL(req.url, `http://${req.headers.host ?? host}`);
    for (const prefix of unreachable) {
      if (url.pathname.startsWith(prefix)) {
        req.socket.destroy();
        return;
      }
    }
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      await api.handle(req, res, url);
      return;
    }
    if (url.pathname.startsWith('/__control/')) {
      await control(req, res, url);
      return;
    }
    serveStatic(req, res, url);
  }

  async function control(req, res, url) {
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const what = url.pathname.slice('/__control/'.length);
    if (what === 'faults' && req.method === 'GET') return send(200, api.faults.describe());
    if (what === 'faults' && req.method === 'POST') {
      try {
        return send(200, api.faults.set(JSON.parse(await readText(req))));
      } catch (err) {
        return send(400, { error: String(err.message) });
      }
    }
    if (what === 'log' && req.method === 'GET') {
      // ?since=<seq> answers only the newer entries (the demo's live request log polls this).
      // X-Log-Length lets a poller notice that the log restarted (a reset, a new server).
      const since = Number(url.searchParams.get('since') ?? 0);
      res.setHeader('x-log-length', String(api.log.length));
      return send(200, since > 0 ? api.log.filter((e) => e.seq > since) : api.log);
    }
    if (what === 'edit' && req.method === 'POST') {
      // "Someone else edited this": {collection, id, patch} is merged into the stored
      // entity server-side (JSON merge patch), bumping its version (ETag), without going
      // through /api, so the request log and idempotency records stay the clients' own.
      try {
        const { collection, id, patch } = JSON.parse(await readText(req));
        if (typeof collection !== 'string' || typeof id !== 'string' || !patch || typeof patch !== 'object') {
          throw new TypeError('edit needs {collection, id, patch}');
        }
        const current = api.store.get(collection, id);
        if (!current) return send(404, { error: `no ${collection}/${id}` });
        const saved = api.store.put(collection, id, mergePatch(current.doc, patch), api.now());
        return send(200, { doc: saved.doc, etag: etag(saved.version) });
      } catch (err) {
        return send(400, { error: String(err.message) });
      }
    }
    if (what === 'reset' && req.method === 'POST') {
      api.reset();
      return send(200, { ok: true });
    }
    return send(404, { error: 'unknown control' });
  }

  function serveStatic(req, res, url) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405).end();
      return;
    }
    const prefix = prefixes.find((p) => url.pathname.startsWith(p));
    if (!prefix) {
      res.writeHead(404).end('not found');
      return;
    }
    const root = mounts[prefix];
    let rel = decodeURIComponent(url.pathname.slice(prefix.length));
    if (rel === '' || rel.endsWith('/')) rel += 'index.html';
    const file = normalize(join(root, rel));
    if (file !== root && !file.startsWith(root.endsWith(sep) ? root : root + sep)) {
      res.writeHead(403).end();
      return;
    }
    let st;
    try {
      st = statSync(file);
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    if (!st.isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': st.size,
      'cache-control': 'no-store',
      'service-worker-allowed': '/',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const { port: actual } = server.address();
  return {
    url: `http://${host}:${actual}`,
    api,
    server,
    unreachable,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

function readText(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      s += c;
      if (s.length > 65536) req.destroy();
    });
    req.on('end', () => resolve(s));
    req.on('error', reject);
  });
}
