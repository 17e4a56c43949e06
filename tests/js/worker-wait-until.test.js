/**
 * The promise a `sync` event hands to waitUntil (policy in sw/BgsyncWorker.js's file
 * comment and the README): it REJECTS while retryable items remain after the run -- the
 * way to make Chromium fire the tag again later (about +5 and +15 minutes) -- and
 * RESOLVES when nothing is left that a retry could change (delivered, dead, auth).
 * The worker runs in Node with the real engine module; the event is a fake whose
 * waitUntil keeps the promise, as the browser would.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BgsyncWorker } from '../../sw/BgsyncWorker.js';
import { syncTag } from '../../web/protocol.js';
import { WASM_DIR } from './support/loadWasm.js';

const ORIGIN = 'https://app.test';
const INITIAL_BACKOFF_MS = 60_000;

let wasmModule;
beforeAll(async () => {
  wasmModule = await WebAssembly.compile(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
});

const workers = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.retire();
});

/**
 * A worker with the Background Sync API, a server whose answer the test sets
 * (`answer`: a status, or 0 for a network error) and an engine clock it moves.
 */
function setup({ eventBudgetMs } = {}) {
  const listeners = {};
  const t = { answer: 200, nowMs: 1_000_000, fetched: [] };
  const scope = {
    location: new URL(`${ORIGIN}/sw.js`),
    addEventListener: (type, fn) => {
      listeners[type] = fn;
    },
    fetch: async (url) => {
      t.fetched.push(String(url.url ?? url));
      if (t.answer === 0) throw new TypeError('Failed to fetch');
      return new Response(t.answer === 204 ? null : '{}', { status: t.answer, headers: { 'content-type': 'application/json' } });
    },
    SyncManager: function SyncManager() {},
    registration: { sync: { register: async () => undefined } },
  };
  const options = {
    queues: [{ name: 'default', backoff: { jitter: 'none', initialMs: INITIAL_BACKOFF_MS } }],
    storage: 'memory',
    blobStore: false,
    wasmModule,
    now: () => t.nowMs,
    logger: { warn() {}, info() {} },
  };
  if (eventBudgetMs !== undefined) options.eventBudgetMs = eventBudgetMs;
  t.worker = new BgsyncWorker(options);
  t.worker.listen(scope);
  workers.push(t.worker);
  /** Fires `sync` the way the browser does; returns the promise given to waitUntil (or null). */
  t.fireSync = (tag = syncTag('default'), { lastChance = false } = {}) => {
    const event = {
      tag,
      lastChance,
      waited: null,
      waitUntil(p) {
        this.waited = p;
      },
    };
    listeners.sync(event);
    return event.waited;
  };
  t.enqueue = (n = 1) =>
    Promise.all(Array.from({ length: n }, (_, i) => t.worker.enqueue({ url: `${ORIGIN}/api/notes`, body: `{"n":${i}}` })));
  return t;
}

/** Settles `p` and says how: {resolved: value} or {rejected: error}. */
function settle(p) {
  return p.then(
    (value) => ({ resolved: value }),
    (error) => ({ rejected: error }),
  );
}

describe('sync event: the waitUntil promise', () => {
  it('rejects while an item waits for a retry after a network error, so the browser fires the tag again', async () => {
    const t = setup();
    await t.enqueue(1);
    t.answer = 0;
    const outcome = await settle(t.fireSync());
    expect(outcome.rejected).toMatchObject({ name: 'BgsyncError', code: 'invalid-state' });
    expect(outcome.rejected.message).toMatch(/1 item\(s\) of 'default' still wait/);
    expect(t.fetched).toHaveLength(1);
    const st = await t.worker.status('default');
    expect(st.counts).toMatchObject({ waiting: 1, dead: 0 });
    expect(st.lastRun).toMatchObject({ trigger: 'sync', result: 'failed', remaining: 1 });
  });

  it('rejects after a 503 too, and when the retry arrives before the backoff is over (nothing sent)', async () => {
    const t = setup();
    await t.enqueue(1);
    t.answer = 503;
    expect((await settle(t.fireSync())).rejected).toMatchObject({ code: 'invalid-state' });
    // The browser's retry comes in minutes; the engine's backoff may be longer.
    t.nowMs += INITIAL_BACKOFF_MS / 2;
    t.answer = 200;
    expect((await settle(t.fireSync())).rejected).toMatchObject({ code: 'invalid-state' });
    expect(t.fetched).toHaveLength(1); // the early wake-up sent nothing
    // Once the backoff is over, the next one delivers and resolves.
    t.nowMs += INITIAL_BACKOFF_MS;
    expect(await settle(t.fireSync())).toEqual({ resolved: undefined });
    expect(t.fetched).toHaveLength(2);
  });

  it('rejects when the time budget ends the run with items not yet tried', async () => {
    const t = setup({ eventBudgetMs: 0 });
    await t.enqueue(3);
    const outcome = await settle(t.fireSync());
    expect(outcome.rejected).toMatchObject({ code: 'invalid-state' });
    expect(outcome.rejected.message).toMatch(/\b3 item\(s\) of 'default' still wait/);
    expect(t.fetched).toEqual([]);
    expect((await t.worker.status('default')).counts.pending).toBe(3);
  });

  it('resolves once every item was delivered', async () => {
    const t = setup();
    await t.enqueue(2);
    expect(await settle(t.fireSync())).toEqual({ resolved: undefined });
    expect((await t.worker.status('default')).counts).toMatchObject({ done: 2, pending: 0, waiting: 0 });
  });

  it('resolves with nothing queued', async () => {
    const t = setup();
    expect(await settle(t.fireSync())).toEqual({ resolved: undefined });
    expect(t.fetched).toEqual([]);
  });

  it.each([
    [400, 'dead'],
    [401, 'auth'],
  ])('resolves when the run leaves only a %i item (%s): a retry would not change it', async (status, state) => {
    const t = setup();
    await t.enqueue(1);
    t.answer = status;
    expect(await settle(t.fireSync())).toEqual({ resolved: undefined });
    const st = await t.worker.status('default');
    expect(st.counts[state]).toBe(1);
    expect(st.counts.pending + st.counts.waiting + st.counts.inflight).toBe(0);
    // The run itself is reported as failed (pages see it); only the browser is not asked again.
    expect(st.lastRun).toMatchObject({ result: 'failed', remaining: 0 });
  });

  it('lastChance: the same decision (rejects while items remain), the run is reported as the last chance, and the items are kept', async () => {
    const t = setup();
    await t.enqueue(1);
    t.answer = 503;
    const outcome = await settle(t.fireSync(syncTag('default'), { lastChance: true }));
    expect(outcome.rejected).toMatchObject({ code: 'invalid-state' });
    const st = await t.worker.status('default');
    expect(st.lastRun).toMatchObject({ trigger: 'sync-last-chance', result: 'failed' });
    // The browser gives the tag up; the item does not die of it: it waits for the next trigger.
    expect(st.counts).toMatchObject({ waiting: 1, dead: 0 });
    expect(st.nextAttemptAt).toBe(t.nowMs + INITIAL_BACKOFF_MS);
    // A successful last chance resolves like any other.
    t.nowMs += INITIAL_BACKOFF_MS;
    t.answer = 200;
    expect(await settle(t.fireSync(syncTag('default'), { lastChance: true }))).toEqual({ resolved: undefined });
  });

  it('leaves tags that are not its own alone (no waitUntil)', async () => {
    const t = setup();
    await t.enqueue(1);
    expect(t.fireSync('someone-else')).toBeNull();
    expect(t.fireSync(syncTag('no-such-queue'))).toBeNull();
    expect(t.fetched).toEqual([]);
  });
});
