/**
 * The origin rule holds at replay, not only at enqueue: an item stored while the worker
 * allowed another origin is never fetched once that origin is off the allow-list (a
 * later version of the worker, or a store written by something else). It becomes a dead
 * letter -- not a silent loss, not an endless retry -- and the pages' `dead` event says
 * why (origin-not-allowed). Batch endpoints: refused when the worker is configured, and
 * at replay nothing of a refused item goes out inside a batch either.
 * Node, the real wasm engine, a fake fetch that records every call.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BgsyncWorker } from '../../sw/BgsyncWorker.js';
import { Engine } from '../../sw/Engine.js';
import { Replayer, REFUSED_STATUS } from '../../sw/Replayer.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { BgsyncError } from '../../web/BgsyncError.js';
import { WASM_DIR, loadWasm } from './support/loadWasm.js';

const ORIGIN = 'https://app.test';
const OTHER = 'https://api.other.test';
const HOUR = 3_600_000;

let wasmModule; // for BgsyncWorker
let emModule; // for Engine.open
beforeAll(async () => {
  wasmModule = await WebAssembly.compile(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
  emModule = await loadWasm();
});

/** A fetch that records each call and answers with `answer(url, init)` (or throws it). */
function recordingFetch(answer) {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url: String(url), headers: init?.headers ?? {}, body: init?.body });
    return answer(String(url), init);
  };
  return { fetch, calls };
}

/** Polls `fn` until truthy, within a bound (broadcasts are posted asynchronously). */
async function until(fn, what) {
  for (let i = 0; i < 1000; i++) {
    const v = fn();
    if (v) return v;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never: ${what}`);
}

/** One life of a worker without Background Sync (it replays on start and on enqueue). */
function life(store, { allowedOrigins, fetch, nowMs, queues = [{ name: 'default', backoff: { jitter: 'none' } }] }) {
  const posted = [];
  const scope = {
    location: new URL(`${ORIGIN}/sw.js`),
    addEventListener() {},
    fetch,
    clients: { matchAll: async () => [{ postMessage: (m) => posted.push(m) }] },
  };
  const worker = new BgsyncWorker({
    queues,
    storage: store,
    wasmModule,
    blobStore: false,
    allowedOrigins,
    fetch,
    now: () => nowMs,
    logger: { warn() {}, info() {} },
  });
  worker.listen(scope);
  return { worker, posted };
}

describe('replay-time origin check', () => {
  it('an item stored under allowedOrigins=[X] is not fetched by a worker without X: it ends dead, origin-not-allowed', async () => {
    const store = new MemoryStore();
    // Life 1: X allowed, the network down, so both items wait in backoff.
    const offline = recordingFetch(() => {
      throw new TypeError('offline');
    });
    const first = life(store, { allowedOrigins: [OTHER], fetch: offline.fetch, nowMs: 1_000 });
    const foreign = await first.worker.enqueue({ url: `${OTHER}/api/notes`, body: '{"n":1}' });
    const own = await first.worker.enqueue({ url: `${ORIGIN}/api/notes`, body: '{"n":2}' });
    await first.worker.sync('default');
    expect((await first.worker.status('default')).counts.waiting).toBe(2);
    expect(offline.calls.map((c) => c.url).sort()).toEqual([`${OTHER}/api/notes`, `${ORIGIN}/api/notes`].sort());
    await first.worker.retire();

    // Life 2: the same store, X no longer allowed, an hour later (past the backoff).
    const online = recordingFetch(() => new Response('{}', { status: 201 }));
    const second = life(store, { allowedOrigins: [], fetch: online.fetch, nowMs: 1_000 + HOUR });
    await second.worker.syncAll('test');

    expect(online.calls.map((c) => c.url)).toEqual([`${ORIGIN}/api/notes`]);
    expect(online.calls.some((c) => c.headers['idempotency-key'] === foreign.key)).toBe(false);
    const engine = await second.worker.engine();
    const states = Object.fromEntries(engine.items({ limit: 100 }).map((i) => [i.key, i.state]));
    expect(states).toEqual({ [foreign.key]: 'dead', [own.key]: 'done' });
    // Kept for the app to inspect, retry (with a wider allow-list) or discard.
    const [dead] = engine.items({ state: 'dead' });
    expect(dead).toMatchObject({ id: foreign.id, url: `${OTHER}/api/notes`, lastStatus: REFUSED_STATUS, reason: 'origin-not-allowed' });
    const event = await until(() => second.posted.find((m) => m.event === 'dead'), 'a dead event');
    expect(event.detail).toMatchObject({ id: foreign.id, key: foreign.key, url: `${OTHER}/api/notes`, reason: 'origin-not-allowed' });
    await second.worker.retire();
  });

  it('the same item is delivered by a worker that still allows X (the check is the allow-list, not a blanket refusal)', async () => {
    const store = new MemoryStore();
    const first = life(store, { allowedOrigins: [OTHER], fetch: async () => { throw new TypeError('offline'); }, nowMs: 1_000 });
    const foreign = await first.worker.enqueue({ url: `${OTHER}/api/notes`, body: '{"n":1}' });
    await first.worker.sync('default');
    await first.worker.retire();
    const online = recordingFetch(() => new Response('{}', { status: 201 }));
    const second = life(store, { allowedOrigins: [OTHER], fetch: online.fetch, nowMs: 1_000 + HOUR });
    await second.worker.syncAll('test');
    expect(online.calls.map((c) => c.headers['idempotency-key'])).toEqual([foreign.key]);
    expect((await second.worker.engine()).items({ limit: 10 }).map((i) => i.state)).toEqual(['done']);
    await second.worker.retire();
  });

  it('refuses a batch endpoint off the allow-list when the worker is configured (typed error)', async () => {
    const queues = [{ name: 'outbox', batch: { url: `${OTHER}/batch`, maxItems: 5 } }];
    const noFetch = async () => {
      throw new Error('no request expected');
    };
    expect(() => life(new MemoryStore(), { allowedOrigins: [], fetch: noFetch, nowMs: 1_000, queues })).toThrow(
      expect.objectContaining({ name: 'BgsyncError', code: 'origin-not-allowed' }),
    );
    expect(() => life(new MemoryStore(), { allowedOrigins: [], fetch: noFetch, nowMs: 1_000, queues: [{ name: 'o', batch: { url: 'ftp://x.test/b', maxItems: 5 } }] })).toThrow(
      expect.objectContaining({ code: 'invalid-url' }),
    );
    // Allowed: the worker's own origin, or an origin on the list.
    for (const [allowedOrigins, url] of [[[], `${ORIGIN}/batch`], [[OTHER], `${OTHER}/batch`]]) {
      const { worker } = life(new MemoryStore(), { allowedOrigins, fetch: noFetch, nowMs: 1_000, queues: [{ name: 'outbox', batch: { url, maxItems: 5 } }] });
      await worker.engine();
      await worker.retire();
    }
  });
});

describe('Replayer with checkUrl, batch queues', () => {
  const checkUrl = (url) => {
    const origin = new URL(url).origin;
    if (origin !== ORIGIN) throw new BgsyncError('origin-not-allowed', origin);
  };

  async function batchEngine(batchUrl) {
    return Engine.open(emModule, new MemoryStore(), {
      now: () => 1_000,
      seed: 1,
      installId: 'test',
      queues: [{ name: 'outbox', backoff: { jitter: 'none' }, batch: { url: batchUrl, maxItems: 10 } }],
    });
  }

  function replayer(engine, fetch, decisions) {
    return new Replayer({ engine, fetch, concurrency: 1, requestTimeoutMs: 5_000, batch: true, checkUrl, onOutcome: (item, d) => decisions.push(d) });
  }

  it('a refused batch endpoint: nothing is fetched, every item of the batch is a dead letter', async () => {
    const engine = await batchEngine(`${OTHER}/batch`); // the engine itself does not judge origins
    const a = await engine.enqueue({ queue: 'outbox', method: 'POST', url: `${ORIGIN}/api/a` }, '{}');
    const b = await engine.enqueue({ queue: 'outbox', method: 'POST', url: `${ORIGIN}/api/b` }, '{}');
    const { fetch, calls } = recordingFetch(() => new Response('{}', { status: 200 }));
    const decisions = [];
    await replayer(engine, fetch, decisions).run('outbox', { deadlineMs: Infinity });
    expect(calls).toEqual([]);
    expect(decisions.map((d) => [d.id, d.state, d.reason]).sort()).toEqual([
      [a.id, 'dead', 'origin-not-allowed'],
      [b.id, 'dead', 'origin-not-allowed'],
    ]);
    expect(engine.status('outbox').counts).toMatchObject({ dead: 2, pending: 0, inflight: 0 });
    await engine.close();
  });

  it('a refused item inside an allowed batch: left out of the request body and dead; the others are sent', async () => {
    const engine = await batchEngine(`${ORIGIN}/batch`);
    const ok = await engine.enqueue({ queue: 'outbox', method: 'POST', url: `${ORIGIN}/api/a` }, '{"a":1}');
    const off = await engine.enqueue({ queue: 'outbox', method: 'POST', url: `${OTHER}/api/b` }, '{"secret":1}');
    const { fetch, calls } = recordingFetch((url, init) => {
      const sent = JSON.parse(new TextDecoder().decode(init.body)).items;
      return new Response(JSON.stringify({ results: sent.map((i) => ({ key: i.key, status: 201 })) }), { status: 200 });
    });
    const decisions = [];
    await replayer(engine, fetch, decisions).run('outbox', { deadlineMs: Infinity });
    expect(calls).toHaveLength(1);
    const body = new TextDecoder().decode(calls[0].body);
    expect(JSON.parse(body).items.map((i) => i.key)).toEqual([ok.key]);
    expect(body).not.toContain('secret');
    const byId = Object.fromEntries(decisions.map((d) => [d.id, [d.state, d.reason ?? null]]));
    expect(byId[off.id]).toEqual(['dead', 'origin-not-allowed']);
    expect(byId[ok.id][0]).toBe('done');
    await engine.close();
  });
});
