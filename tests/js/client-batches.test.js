/**
 * Calls of one page task share one message (web/WorkerRequests.js): the real SyncClient and
 * BgsyncWorker in Node (support/pageAndWorker.js). What must hold: one message for a burst,
 * the worker's order is the call order, every call keeps its own outcome, an unclonable call
 * fails alone, and a worker that does not speak batches still gets one message per call.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ORIGIN, pageAndWorker } from './support/pageAndWorker.js';
import { WASM_DIR } from './support/loadWasm.js';
import { MAX_BATCH_CALLS } from '../../web/protocol.js';

let wasmModule;
beforeAll(async () => {
  wasmModule = await WebAssembly.compile(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
});

async function ready() {
  const t = pageAndWorker(wasmModule, { timeoutMs: 5000 });
  await t.client.ready();
  t.posted.length = 0;
  return t;
}

const batches = (posted) => posted.filter((m) => m.type === 'batch');

describe('calls of one task in one message', () => {
  it('a burst leaves as one batch; the items are stored in call order', async () => {
    const t = await ready();
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => t.client.enqueue({ url: `/api/n/${i}`, body: { i }, entity: `e${i % 3}` })),
    );
    expect(t.posted).toHaveLength(1);
    expect(batches(t.posted)[0].args.calls).toHaveLength(300);
    const ids = results.map((r) => r.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(results.map((r) => r.key)).size).toBe(300);
    const items = (await t.worker.engine()).items({ limit: 1000 });
    expect(items.map((item) => item.url)).toEqual(results.map((_, i) => `${ORIGIN}/api/n/${i}`));
    t.client.close();
  });

  it(`more than ${MAX_BATCH_CALLS} calls go as several batches`, async () => {
    const t = await ready();
    const n = MAX_BATCH_CALLS + 20;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => t.client.enqueue({ url: `/api/m/${i}` })));
    expect(batches(t.posted).map((m) => m.args.calls.length)).toEqual([MAX_BATCH_CALLS, 20]);
    expect(new Set(results.map((r) => r.id)).size).toBe(n);
    t.client.close();
  });

  it('each call keeps its own outcome', async () => {
    const t = await ready();
    const outcomes = await Promise.allSettled([
      t.client.enqueue({ url: '/api/ok' }),
      t.client.enqueue({ url: '/api/x', queue: 'nope' }),
      t.client.status(),
      t.client.retryDead(999_999),
    ]);
    expect(t.posted).toHaveLength(1);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : o.reason.code))).toEqual(['ok', 'unknown-queue', 'ok', 'not-found']);
    expect(outcomes[2].value.counts).toBeDefined();
    t.client.close();
  });

  it('a call that cannot be cloned fails alone; the rest of its task is stored', async () => {
    const t = await ready();
    const outcomes = await Promise.allSettled([
      t.client.enqueue({ url: '/api/a' }),
      t.client.enqueue({ url: '/api/b', conflictStrategy: { resolve: () => 'mine' } }),
      t.client.enqueue({ url: '/api/c' }),
    ]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? 'ok' : o.reason.code))).toEqual(['ok', 'unclonable-body', 'ok']);
    // The batch could not leave; the calls went one by one, and the bad one not at all.
    expect(batches(t.posted)).toHaveLength(0);
    expect(t.posted.map((m) => m.args.url)).toEqual([`${ORIGIN}/api/a`, `${ORIGIN}/api/c`]);
    const urls = (await t.worker.engine()).items({ limit: 10 }).map((i) => i.url);
    expect(urls).toEqual([`${ORIGIN}/api/a`, `${ORIGIN}/api/c`]);
    t.client.close();
  });

  it('a worker whose hello does not offer batches gets one message per call', async () => {
    const t = await ready();
    delete t.client.info.batch;
    await Promise.all([t.client.enqueue({ url: '/api/1' }), t.client.enqueue({ url: '/api/2' }), t.client.status()]);
    expect(t.posted.map((m) => m.type).sort()).toEqual(['enqueue', 'enqueue', 'status']);
    t.client.close();
  });

  it('the worker answers a batch call by call, by index, and ignores a bad call alone', async () => {
    const t = await ready();
    const ignoredBefore = t.worker.diagnostics.ignoredMessages;
    const { port1, port2 } = new MessageChannel();
    const answers = [];
    const twoAnswers = new Promise((resolve) => {
      port1.onmessage = (e) => {
        answers.push(e.data);
        if (answers.length === 2) resolve();
      };
    });
    t.deliver({
      bgsync: 1,
      type: 'batch',
      args: {
        calls: [
          { type: 'enqueue', args: { queue: 'default', method: 'PUT', url: `${ORIGIN}/api/raw/0`, headers: {} } },
          { type: 'enqueue', args: { queue: 'default', method: 'TRACE', url: `${ORIGIN}/api/raw/1`, headers: {} } },
          { type: 'status', args: {} },
        ],
      },
    }, { port: port2 });
    await twoAnswers;
    port1.close();
    expect(answers.map((a) => [a.index, a.ok]).sort()).toEqual([[0, true], [2, true]]);
    expect(t.worker.diagnostics.ignoredMessages).toBe(ignoredBefore + 1);
    expect(t.worker.diagnostics.lastIgnoredReason).toMatch(/batch call 1: enqueue: bad method/);
    const urls = (await t.worker.engine()).items({ limit: 10 }).map((i) => i.url);
    expect(urls).toEqual([`${ORIGIN}/api/raw/0`]);
    t.client.close();
  });
});
