/**
 * Bad server responses, in Node: the real engine and Replayer, Node's fetch, and a local
 * server on 127.0.0.1 that answers badly. For each case a defined outcome, no crash,
 * nothing lost (the item is still listed, in the state the table names):
 *
 *   invalid JSON in a batch response (2xx)     every item waits (reason bad-batch-response)
 *   a batch response of the wrong shape        every item waits (missing-from-batch)
 *   invalid JSON in a 412 (and in the GET after) conflict parked, needsRemote
 *   a 412 of 5 MiB, the GET answers 404        conflict parked, remoteDeleted
 *   a 412 of 5 MiB, the GET answers 5 MiB      conflict parked, needsRemote, remoteError
 *                                              invalid-document; keep-local still works
 *   a 2xx with a 20 MiB body                   done (the body is drained, not kept)
 *   a 2xx with a wrong content type            done (content types are not judged)
 *   a 500 with an HTML body                    waits (retry)
 *   a redirect loop                            dead letter after one request (not followed)
 *   a redirect to the same origin              dead letter (redirects are never followed)
 *   a 3xx with no Location                     dead (unexpected-status)
 *   a redirect to ANOTHER origin               dead letter; nothing reaches the other origin
 *   headers, then a body that never ends       cut by the request timeout (status 0, waits)
 *
 * Two gaps this table found, both fixed in sw/Replayer.js:
 *  - fetch followed redirects, so a 307 from the app's origin sent the item -- body,
 *    Idempotency-Key, headers from the credentials hook -- to an origin that is not
 *    allow-listed (enqueue checked the origin, replay did not): now redirect: 'manual';
 *  - the request timeout covered only the wait for headers: a response whose body stalled
 *    held the run forever; now it covers the whole exchange.
 */
import { createServer } from 'node:http';
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { Replayer } from '../../sw/Replayer.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

function listen(handler) {
  const sockets = new Set();
  const server = createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        hits: [],
        close: () =>
          new Promise((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

let module;
let app; // the app's origin (127.0.0.1)
let other; // another origin (localhost: another host, another port)
const routes = new Map(); // path -> (req, res, body) => void
beforeAll(async () => {
  module = await loadWasm();
  const handle = (name) => (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const srv = name === 'app' ? app : other;
      const path = new URL(req.url, 'http://x').pathname;
      srv.hits.push({ path, method: req.method, key: req.headers['idempotency-key'] ?? null, authorization: req.headers.authorization ?? null, body: Buffer.concat(chunks).toString() });
      const route = name === 'app' ? routes.get(path) : null;
      if (route) route(req, res);
      else res.writeHead(201, { 'content-type': 'application/json' }).end('{}');
    });
  };
  app = await listen(handle('app'));
  other = await listen(handle('other'));
  other.url = other.url.replace('127.0.0.1', 'localhost');
});
afterAll(async () => {
  await app?.close();
  await other?.close();
});

async function open(queue = {}) {
  return Engine.open(module, new MemoryStore(), {
    now: () => 1_000_000,
    seed: 3,
    installId: 'bad',
    queues: [{ name: 'q', backoff: { jitter: 'none' }, conflict: { strategy: 'merge' }, ...queue }],
  });
}

/**
 * Node's fetch (undici) detaches a Uint8Array body when it first sends it, so it cannot
 * follow a 307/308 with it ("Cannot perform ArrayBuffer.prototype.slice on a detached
 * ArrayBuffer"); browsers re-send such bodies. Handing the bytes over as a Blob gives
 * Node the browser's behaviour.
 */
const browserLikeFetch = (url, init = {}) =>
  globalThis.fetch(url, { ...init, body: ArrayBuffer.isView(init.body) ? new Blob([init.body]) : init.body });

function replayer(engine, options = {}) {
  return new Replayer({
    engine,
    fetch: browserLikeFetch,
    concurrency: 2,
    requestTimeoutMs: 5_000,
    credentials: async () => ({ authorization: 'Bearer secret-token' }),
    ...options,
  });
}

/** Enqueues one item for path, replays once, returns the item as listed afterwards. */
async function once(path, route, { method = 'PUT', body = '{"a":1}', extra = {}, queue } = {}) {
  routes.set(path, route);
  const engine = await open(queue);
  const { id } = await engine.enqueue({ queue: 'q', method, url: `${app.url}${path}`, entity: path, ...extra }, body);
  const decisions = [];
  const summary = await replayer(engine, { batch: !!queue?.batch, onOutcome: (i, d) => decisions.push(d) }).run('q', { deadlineMs: Infinity });
  const item = engine.items({ limit: 100 }).find((i) => i.id === id);
  const conflicts = engine.conflicts ? engine.conflicts({}) : [];
  const kept = item.state === 'done' ? null : new TextDecoder().decode(engine.body(id)); // the local change
  await engine.close();
  return { item, summary, conflicts, decisions, kept };
}

const json = (res, status, body, headers = {}) => res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(body);

describe('Bad server responses → a defined outcome, nothing lost', () => {
  it('invalid JSON in a batch response: every item waits (bad-batch-response)', async () => {
    routes.set('/batch', (req, res) => json(res, 200, '{"results": [ {"key": '));
    const engine = await open({ batch: { url: `${app.url}/batch`, maxItems: 10 } });
    for (let i = 0; i < 3; i++) await engine.enqueue({ queue: 'q', method: 'POST', url: `${app.url}/b/${i}` }, `{"i":${i}}`);
    await replayer(engine, { batch: true }).run('q', { deadlineMs: Infinity });
    const items = engine.items({ limit: 10 });
    expect(items.map((i) => [i.state, i.reason])).toEqual(Array(3).fill(['waiting', 'bad-batch-response']));
    await engine.close();
  });

  it('a batch response of the wrong shape: items without a result wait (missing-from-batch / bad-batch-result)', async () => {
    routes.set('/batch2', (req, res) => json(res, 200, '{"results": [{"key": "nope", "status": 201}, {"status": "x"}]}'));
    const engine = await open({ batch: { url: `${app.url}/batch2`, maxItems: 10 } });
    for (let i = 0; i < 2; i++) await engine.enqueue({ queue: 'q', method: 'POST', url: `${app.url}/c/${i}` }, `{"i":${i}}`);
    await replayer(engine, { batch: true }).run('q', { deadlineMs: Infinity });
    const items = engine.items({ limit: 10 });
    expect(items.every((i) => i.state === 'waiting')).toBe(true);
    expect(items.map((i) => i.reason).every((r) => ['missing-from-batch', 'bad-batch-result'].includes(r))).toBe(true);
    await engine.close();
  });

  it('invalid JSON in a 412 and in the GET that follows: the conflict is parked, needing the remote document', async () => {
    const { item, conflicts, decisions } = await once('/n/1', (req, res) => json(res, req.method === 'GET' ? 200 : 412, '{not json', { etag: '"v9"' }), {
      extra: { baseVersion: '"v1"', baseDocument: { a: 0 } },
    });
    expect(item.state).toBe('conflict');
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ state: 'open', needsRemote: true });
    expect(decisions.at(-1).remoteError).toBe('invalid-document'); // the GET's body, refused
  });

  // A 412 body over the 1 MiB the Replayer keeps (BGS_MAX_DOCUMENT_BYTES) never reaches the
  // engine: it sees a 412 without a document and asks for the remote one, which the
  // Replayer GETs. What the GET answers decides; the local change stays either way.
  const huge = `{"a":"${'x'.repeat(5 * 1024 * 1024)}"}`;
  const staleEdit = { extra: { baseVersion: '"v1"', baseDocument: { a: 0 } } };

  it('a 412 of 5 MiB, then the GET answers 404: parked as deleted on the server, the local change kept', async () => {
    const { item, conflicts, kept } = await once('/n/2', (req, res) => (req.method === 'GET' ? json(res, 404, '{}') : json(res, 412, huge, { etag: '"v2"' })), staleEdit);
    expect(app.hits.filter((h) => h.path === '/n/2').map((h) => h.method)).toEqual(['PUT', 'GET']);
    expect([item.state, item.reason]).toEqual(['conflict', 'conflict']);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({
      status: 412,
      state: 'open',
      reason: 'remote-deleted',
      needsRemote: false,
      remoteDeleted: true,
      base: { a: 0 },
      local: { a: 1 },
      remote: null,
      itemState: 'conflict',
    });
    expect(kept).toBe('{"a":1}');
  });

  it('a 412 of 5 MiB, then a GET of 5 MiB: a typed error (invalid-document), parked needing the remote, resolvable by hand', async () => {
    const path = '/n/3';
    routes.set(path, (req, res) => {
      if (req.method === 'GET') return json(res, 200, huge, { etag: '"v3"' });
      return req.headers['if-match'] === '"v2"' ? json(res, 200, '{}', { etag: '"v4"' }) : json(res, 412, huge, { etag: '"v2"' });
    });
    const engine = await open();
    try {
      const { id } = await engine.enqueue({ queue: 'q', method: 'PUT', url: `${app.url}${path}`, entity: path, ...staleEdit.extra }, '{"a":1}');
      const decisions = [];
      await replayer(engine, { onOutcome: (i, d) => decisions.push(d) }).run('q', { deadlineMs: Infinity });
      expect(decisions).toHaveLength(1);
      expect(decisions[0]).toMatchObject({ state: 'conflict', remoteError: 'invalid-document', conflict: { needsRemote: true } });
      const [conflict] = engine.conflicts({});
      expect(conflict).toMatchObject({ state: 'open', reason: 'needs-remote', needsRemote: true, remote: null, remoteVersion: '"v2"', local: { a: 1 } });
      expect(engine.items({ limit: 10 }).find((i) => i.id === id).state).toBe('conflict');
      expect(new TextDecoder().decode(engine.body(id))).toBe('{"a":1}');

      // The 412's ETag is known, so the app can still send its change against it.
      await engine.conflictResolve(conflict.id, { keep: 'local' });
      await replayer(engine).run('q', { deadlineMs: Infinity });
      const puts = app.hits.filter((h) => h.path === path && h.method === 'PUT');
      expect(puts.map((h) => h.body)).toEqual(['{"a":1}', '{"a":1}']);
      expect(engine.items({ limit: 10 }).find((i) => i.id === id).state).toBe('done');
    } finally {
      await engine.close();
    }
  });

  it('a 2xx with a 20 MiB body: done (the body is drained, not kept)', async () => {
    const big = Buffer.alloc(20 * 1024 * 1024, 0x61);
    const { item } = await once('/big', (req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(big));
    expect(item.state).toBe('done');
  });

  it('a 2xx with a wrong content type: done (content types are not judged)', async () => {
    const { item } = await once('/ct', (req, res) => res.writeHead(201, { 'content-type': 'image/png' }).end('\x89PNG'));
    expect(item.state).toBe('done');
  });

  it('a 500 with an HTML body: waits for a retry', async () => {
    const { item } = await once('/html', (req, res) => res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>oops</h1>'));
    expect([item.state, item.reason]).toEqual(['waiting', 'retry']);
  });

  it('a redirect loop: not followed, a dead letter after one request (unexpected-status)', async () => {
    const { item } = await once('/loop', (req, res) => res.writeHead(307, { location: '/loop' }).end());
    expect([item.state, item.reason, item.lastStatus]).toEqual(['dead', 'unexpected-status', 307]);
    expect(app.hits.filter((h) => h.path === '/loop').length).toBe(1);
  });

  it('a redirect to the same origin is not followed either: a dead letter, nothing sent where it points', async () => {
    routes.set('/landed', (req, res) => json(res, 201, '{}'));
    const { item } = await once('/moved', (req, res) => res.writeHead(308, { location: '/landed' }).end());
    expect([item.state, item.reason, item.lastStatus]).toEqual(['dead', 'unexpected-status', 308]);
    expect(app.hits.filter((h) => h.path === '/landed')).toEqual([]);
  });

  it('a 3xx without Location: a dead letter (unexpected-status)', async () => {
    const { item } = await once('/noloc', (req, res) => res.writeHead(302).end());
    expect([item.state, item.reason]).toEqual(['dead', 'unexpected-status']);
  });

  it('a redirect to an origin that is not allow-listed is not followed (nothing reaches it)', async () => {
    other.hits.length = 0;
    await once('/away', (req, res) => res.writeHead(307, { location: `${other.url}/collect` }).end(), { body: '{"secret":"payload"}' });
    // Today the item's body and Idempotency-Key arrive at the other origin (fetch itself
    // drops Authorization on a cross-origin redirect, so the hook's token does not).
    if (other.hits.length) console.log(`redirected off-origin: ${JSON.stringify(other.hits.map(({ path, method, key, authorization, body }) => ({ path, method, key, authorization, body })))}`);
    expect(other.hits).toEqual([]);
  });

  it('a body that stalls after the headers is cut by the request timeout (the run ends)', async () => {
    routes.set('/stall', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partial":'); // and never ends
    });
    const engine = await open();
    await engine.enqueue({ queue: 'q', method: 'POST', url: `${app.url}/stall` }, '{}');
    const run = replayer(engine, { requestTimeoutMs: 300 }).run('q', { deadlineMs: Infinity });
    const outcome = await Promise.race([run.then(() => 'ended'), new Promise((r) => setTimeout(() => r('still running after 5 s'), 5_000))]);
    // Destroy the stalled connection either way (this is the last test of the file).
    await app.close();
    expect(outcome).toBe('ended');
  });
});
