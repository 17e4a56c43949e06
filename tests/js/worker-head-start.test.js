/**
 * Head start (sw/HeadStart.js): a worker woken by `sync` sends the stored ticket's request
 * before its engine is open, then leases exactly that item and reports the answer as its
 * attempt. Shown with the real engine module in Node and a store whose load the test
 * holds back, so "before the engine is open" is a fact of the test, not a timing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BgsyncWorker } from '../../sw/BgsyncWorker.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { syncTag } from '../../web/protocol.js';
import { WASM_DIR } from './support/loadWasm.js';

const ORIGIN = 'https://app.test';

let wasmModule;
beforeAll(async () => {
  wasmModule = await WebAssembly.compile(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
});

const workers = [];
const holds = [];
afterEach(async () => {
  for (const release of holds.splice(0)) release(); // a failed expectation must not leave a load held
  for (const w of workers.splice(0)) await w.retire();
});

/** A MemoryStore whose load() holds the pages back while `held` (the module compiling, the store loading). */
class HeldStore extends MemoryStore {
  constructor() {
    super();
    this.held = null;
  }

  hold() {
    let release;
    this.held = new Promise((resolve) => {
      release = resolve;
    });
    const done = () => {
      this.held = null;
      release();
    };
    holds.push(done);
    return done;
  }

  /** Hands the tickets over at once (IndexedDbStore reads them first), then holds the pages. */
  async load({ onAhead } = {}) {
    onAhead?.(this.size === undefined ? null : this.ahead);
    await this.held;
    return super.load();
  }
}

/** Lets every queued task run (the load stays held, so the engine cannot open meanwhile). */
const turn = () => new Promise((resolve) => setTimeout(resolve, 0));

/** One life of the worker over `store`; `server` records requests and answers `server.answer`. */
function life(store, server, { headStart, queues } = {}) {
  const listeners = {};
  const scope = {
    location: new URL(`${ORIGIN}/sw.js`),
    addEventListener: (type, fn) => {
      listeners[type] = fn;
    },
    fetch: async (url, init) => {
      server.requests.push({
        url: String(url),
        key: init.headers['idempotency-key'],
        body: init.body ? new TextDecoder().decode(init.body) : null,
      });
      if (server.answer === 0) throw new TypeError('Failed to fetch');
      return new Response('{}', { status: server.answer, headers: { 'content-type': 'application/json' } });
    },
    SyncManager: function SyncManager() {},
    registration: { sync: { register: async () => undefined } },
  };
  const warnings = [];
  const worker = new BgsyncWorker({
    queues: queues ?? [{ name: 'default', backoff: { jitter: 'none', initialMs: 60_000 } }],
    storage: store,
    blobStore: false,
    wasmModule,
    now: () => server.nowMs,
    logger: { warn: (m) => warnings.push(m), info() {} },
    ...(headStart === undefined ? {} : { headStart }),
  });
  worker.listen(scope);
  workers.push(worker);
  const fireSync = (queue = 'default') => {
    let waited = null;
    listeners.sync({ tag: syncTag(queue), lastChance: false, waitUntil: (p) => (waited = p) });
    return waited;
  };
  return { worker, fireSync, warnings };
}

/** A first life that queues `n` notes (priority per index) while offline, then ends. */
async function queueOffline(store, server, bodies, opts) {
  const { worker } = life(store, server, opts);
  const out = [];
  for (const [i, b] of bodies.entries()) {
    out.push(await worker.enqueue({ url: `${ORIGIN}/api/notes/${i}`, method: 'PUT', body: b.body ?? `{"n":${i}}`, priority: b.priority }));
  }
  await worker.retire();
  return out;
}

describe('head start', () => {
  it('sends the first request before the engine is open, then leases that item and reports its answer', async () => {
    const store = new HeldStore();
    const server = { requests: [], answer: 200, nowMs: 1_000_000 };
    await queueOffline(store, server, [{}, {}, {}]);
    expect(store.ahead?.tickets?.default?.item).toMatchObject({ url: `${ORIGIN}/api/notes/0` });

    const release = store.hold();
    const { worker, fireSync } = life(store, server);
    const waited = fireSync();
    await turn();
    // The store has not loaded, so no engine exists, and the first request is out.
    expect(worker._engine).not.toBeNull();
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]).toMatchObject({ url: `${ORIGIN}/api/notes/0`, body: '{"n":0}' });
    release();
    await waited;
    // Each item once, with its own key; the first was counted as one attempt, and is done.
    expect(server.requests.map((r) => r.url)).toEqual([0, 1, 2].map((i) => `${ORIGIN}/api/notes/${i}`));
    expect(new Set(server.requests.map((r) => r.key)).size).toBe(3);
    const st = await worker.status('default');
    expect(st.counts).toMatchObject({ done: 3, pending: 0, inflight: 0, waiting: 0 });
    expect(worker.diagnostics.headStarts).toEqual({ sent: 1, claimed: 1, orphaned: 0 });
    const engine = await worker.engine();
    const [first] = engine.items({ queue: 'default', limit: 1 });
    expect(engine.attempts({ id: first.id }).map((a) => a.status)).toEqual([200]);
  });

  it('sends what a claim would hand out first (priority order), and a retryable answer backs off as usual', async () => {
    const store = new HeldStore();
    const server = { requests: [], answer: 503, nowMs: 1_000_000 };
    await queueOffline(store, server, [{ priority: 'low' }, { priority: 'critical' }]);
    const release = store.hold();
    const { worker, fireSync } = life(store, server);
    const waited = fireSync().catch((err) => err);
    await turn();
    expect(server.requests.map((r) => r.url)).toEqual([`${ORIGIN}/api/notes/1`]);
    release();
    expect(await waited).toMatchObject({ code: 'invalid-state' }); // both wait for a retry
    const st = await worker.status('default');
    expect(st.counts).toMatchObject({ waiting: 2, done: 0 });
    const engine = await worker.engine();
    const critical = engine.items({ queue: 'default' }).find((i) => i.url.endsWith('/1'));
    expect(engine.attempts({ id: critical.id })).toEqual([expect.objectContaining({ status: 503, attempt: 1 })]);
  });

  it('waits for the engine when a wake-up is due before the ticket could be used (validUntil)', async () => {
    const store = new HeldStore();
    const server = { requests: [], answer: 503, nowMs: 1_000_000 };
    const { worker: first, fireSync: firstSync } = life(store, server);
    await first.enqueue({ url: `${ORIGIN}/api/notes/a`, method: 'PUT', body: '{}' });
    await firstSync().catch(() => undefined); // a waits until +60 s
    await first.enqueue({ url: `${ORIGIN}/api/notes/b`, method: 'PUT', body: '{}' });
    await first.retire();
    expect(store.ahead.tickets.default.validUntil).toBe(1_000_000 + 60_000);

    server.nowMs += 60_000; // a is due again: it comes first, the stored ticket (b) may not
    server.answer = 200;
    server.requests = [];
    const release = store.hold();
    const { worker, fireSync } = life(store, server);
    const waited = fireSync();
    await turn();
    expect(server.requests).toEqual([]);
    release();
    await waited;
    expect(server.requests.map((r) => r.url)).toEqual([`${ORIGIN}/api/notes/a`, `${ORIGIN}/api/notes/b`]);
    expect(worker.diagnostics.headStarts.sent).toBe(0);
  });

  it('ignores a damaged ticket with a warning; everything is still sent once', async () => {
    const store = new HeldStore();
    const server = { requests: [], answer: 200, nowMs: 1_000_000 };
    await queueOffline(store, server, [{}, {}]);
    store.ahead = { v: 1, tickets: { default: { item: { id: 'one', url: 7 }, body: 'x', validUntil: null } } };
    const { worker, fireSync, warnings } = life(store, server);
    await fireSync();
    expect(warnings.join('\n')).toMatch(/no head start for 'default': the ticket of 'default' is not a ticket/);
    expect(server.requests).toHaveLength(2);
    expect((await worker.status('default')).counts.done).toBe(2);
    expect(worker.diagnostics.headStarts.sent).toBe(0);
  });

  it('drops the answer of a ticket the engine cannot claim (stale ticket): nothing changes, nothing is lost', async () => {
    const store = new HeldStore();
    const server = { requests: [], answer: 200, nowMs: 1_000_000 };
    await queueOffline(store, server, [{}]);
    const stale = structuredClone(store.ahead); // names note 0
    // A later life delivers note 0 and queues note 1; then the old ticket is put back, as a
    // store that did not write tickets atomically could leave it.
    const { worker: second, fireSync: secondSync } = life(store, server, { headStart: false });
    await secondSync();
    await second.enqueue({ url: `${ORIGIN}/api/notes/1`, method: 'PUT', body: '{"n":1}' });
    await second.retire();
    store.ahead = stale;
    server.requests = [];

    const release = store.hold();
    const { worker, fireSync, warnings } = life(store, server);
    const waited = fireSync();
    await turn();
    expect(server.requests.map((r) => r.url)).toEqual([`${ORIGIN}/api/notes/0`]); // sent again, same key
    release();
    await waited;
    expect(worker.diagnostics.headStarts).toEqual({ sent: 1, claimed: 0, orphaned: 1 });
    expect(warnings.join('\n')).toMatch(/sent again later with the same Idempotency-Key/);
    expect(server.requests.map((r) => r.url)).toEqual([`${ORIGIN}/api/notes/0`, `${ORIGIN}/api/notes/1`]);
    expect((await worker.status('default')).counts).toMatchObject({ done: 2, pending: 0 });
  });

  it('is off with headStart: false (no ticket is stored) and for batched queues', async () => {
    const server = { requests: [], answer: 200, nowMs: 1_000_000 };
    const off = new HeldStore();
    await queueOffline(off, server, [{}], { headStart: false });
    expect(off.ahead).toBeNull();
    const batched = new HeldStore();
    await queueOffline(batched, server, [{}], { queues: [{ name: 'default', batch: { url: `${ORIGIN}/api/batch`, maxItems: 50 } }] });
    expect(batched.ahead).toBeNull();
  });
});
