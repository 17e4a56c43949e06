// The core promise of bgsync, end to end in Chromium: what a page enqueued while the API
// failed reaches the server later, in order, each with its idempotency key, and survives
// a killed worker and a reload.
import { E2eHarness } from './support/E2eHarness.js';

const HOUR_MS = 3_600_000;

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});
beforeEach(() => {
  h.reset();
});

/** Enqueues three notes on one entity (so their order is guaranteed) and returns {id, key}s. */
function enqueueThree(s) {
  return s.call(async (c) => {
    const out = [];
    for (const n of [1, 2, 3]) {
      out.push(await c.enqueue({ url: '/api/notes', body: { n }, entity: 'notes:list' }));
    }
    return out;
  });
}

/** Waits until the automatic sync that followed the enqueues has run and left the items waiting. */
async function waitForFailedFirstAttempt(s) {
  return h.waitFor(async () => {
    const st = await s.status('default');
    return st.state !== 'running' && st.counts.waiting === 1 && st.counts.pending === 2 && st.counts.inflight === 0 && st;
  }, 'the first attempt to fail and leave the items queued');
}

describe('BgsyncWorker', () => {
  describe('sync', () => {
    it('delivers items enqueued during an outage in order, each with its Idempotency-Key, on the next sync', async () => {
      h.api.faults.set({ status: 503 });
      const s = await h.open('/');
      try {
        const enqueued = await enqueueThree(s);
        expect(enqueued.map((e) => e.key)).toEqual([expect.any(String), expect.any(String), expect.any(String)]);
        expect(new Set(enqueued.map((e) => e.key)).size).toBe(3);

        // Chromium fired `sync` right after the register: the head failed with 503.
        await waitForFailedFirstAttempt(s);
        const failed = h.log().filter((e) => e.status === 503);
        expect(failed.length).toBeGreaterThanOrEqual(1);
        expect(failed.every((e) => e.key === enqueued[0].key && e.method === 'POST')).toBe(true);
        expect(h.log().some((e) => e.applied)).toBe(false);
        // Nothing was lost after the failed attempt: all three still queued.
        const items = await s.call((c) => c.items({ queue: 'default' }));
        expect(items.map((i) => i.key)).toEqual(enqueued.map((e) => e.key));

        // The API recovers and the backoff has passed (the worker's clock moves, no sleep).
        h.api.faults.set({ status: 0 });
        await s.setClockOffset(HOUR_MS);
        const before = h.log().length;
        await s.dispatchSync('bgsync:default');
        await h.waitFor(() => h.log().filter((e) => e.applied).length === 3, 'three applied requests');

        const delivered = h.log().slice(before);
        expect(delivered.map((e) => [e.method, e.path, e.status, e.key])).toEqual(
          enqueued.map((e) => ['POST', '/api/notes', 201, e.key]),
        );
        expect(h.api.appliedKeys()).toEqual(enqueued.map((e) => e.key));
        const st = await h.waitFor(async () => {
          const x = await s.status('default');
          return x.state === 'completed' && x;
        }, 'status completed');
        expect(st.counts).toMatchObject({ pending: 0, waiting: 0, inflight: 0, done: 3 });
        const events = await s.events();
        expect(events.some((e) => e.type === 'completed' && e.detail.queue === 'default')).toBe(true);
        const progress = events.filter((e) => e.type === 'progress' && e.detail.state === 'done');
        expect(progress.map((e) => e.detail.key)).toEqual(enqueued.map((e) => e.key));
      } catch (err) {
        err.message += `\n--- browser ---\n${s.diagnostics()}`;
        throw err;
      } finally {
        await s.close();
      }
    });

    it('still delivers everything after the worker was killed and the page reloaded', async () => {
      h.api.faults.set({ down: true });
      const s = await h.open('/');
      try {
        const enqueued = await enqueueThree(s);
        const firstLife = await s.page.evaluate(() => window.bgsTest.client.info.instanceId);
        // Kill the worker right after the enqueues resolved, then reload the page.
        await s.stopWorker();
        await s.reload();
        const secondLife = await s.page.evaluate(() => window.bgsTest.client.info.instanceId);
        expect(secondLife).not.toBe(firstLife); // a new worker instance: memory is gone, the store is not
        const st = await s.status('default');
        expect(st.counts.pending + st.counts.waiting + st.counts.inflight).toBe(3);

        h.api.faults.set({ down: false });
        await s.setClockOffset(HOUR_MS); // past any backoff and any lease of a killed attempt
        await s.dispatchSync('bgsync:default');
        await h.waitFor(() => h.api.appliedKeys().length === 3, 'three applied requests');
        expect(h.api.appliedKeys()).toEqual(enqueued.map((e) => e.key));
        // Every attempt of an item, before and after the kill, carried the same key.
        const keys = new Set(enqueued.map((e) => e.key));
        expect(h.log().every((e) => keys.has(e.key))).toBe(true);
      } catch (err) {
        err.message += `\n--- browser ---\n${s.diagnostics()}`;
        throw err;
      } finally {
        await s.close();
      }
    });
  });
});
