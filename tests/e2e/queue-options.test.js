// Queue options in a real service worker (the engine's rules are in tests/js; these show
// that the worker glue and Chromium keep them): coalescing, batching and priority.
//
// "Offline" here is the browser's own: context.setOffline() emulates it for the worker
// too, and Chromium holds a registered `sync` until the worker is online again, so the
// items are enqueued without being attempted (an attempted item is never coalesced) and
// one run finds them all ready.
import { E2eHarness } from './support/E2eHarness.js';

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

const withSession = (path, body) => h.withSession(path, body);

/** Enqueues each request of `list` with the browser offline, then goes online. */
async function enqueueOffline(s, list) {
  await s.context.setOffline(true);
  const before = h.log().length;
  const items = await s.call(async (c, list) => {
    const out = [];
    for (const r of list) out.push(await c.enqueue(r)); // one by one, as separate user actions
    return out;
  }, list);
  // Nothing went out while offline: Chromium keeps the sync for later.
  expect(h.log()).toHaveLength(before);
  await s.context.setOffline(false);
  return items;
}

/** Waits until the queue's run after going online is over (nothing pending, nothing running). */
function waitForRunEnd(s, queue) {
  return h.waitFor(async () => {
    const st = await s.status(queue);
    return st.state !== 'running' && st.counts.pending + st.counts.inflight + st.counts.waiting === 0 && st.lastRun && st;
  }, `the run of '${queue}' to end`);
}

describe('Queue options in Chromium', () => {
  it('coalescing: two PATCHes of one entity made offline reach the server as one request with the merged body', async () => {
    await withSession('/', async (s) => {
      const created = await fetch(`${h.url}/api/notes/n1`, { method: 'PUT', body: JSON.stringify({ title: 'draft', tags: ['a'], tmp: 1 }) });
      expect(created.status).toBe(201);
      const setupRequests = h.log().length;
      const [first, second] = await enqueueOffline(s, [
        { url: '/api/notes/n1', method: 'PATCH', queue: 'coalesced', entity: 'note:n1', body: { title: 'final', tmp: null } },
        { url: '/api/notes/n1', method: 'PATCH', queue: 'coalesced', entity: 'note:n1', body: { tags: ['a', 'b'] } },
      ]);
      // The second change was folded into the first item: same id, same key.
      expect(second).toEqual(first);
      const st = await waitForRunEnd(s, 'coalesced');
      const patches = h.log().slice(setupRequests);
      expect(patches).toEqual([expect.objectContaining({ method: 'PATCH', path: '/api/notes/n1', key: first.key, status: 200, applied: true })]);
      expect(st.counts.done).toBe(1);
      const doc = await (await fetch(`${h.url}/api/notes/n1`)).json();
      // Both changes, merged as JSON merge patches: tmp deleted by the first, tags from the second.
      expect(doc).toEqual({ id: 'n1', title: 'final', tags: ['a', 'b'], updatedAt: expect.any(Number) });
    });
  });

  it('batching: N items made offline go in ceil(N / maxItems) requests to the batch endpoint, and all are applied', async () => {
    const N = 7;
    const MAX_ITEMS = 3; // BATCH_MAX_ITEMS of fixtures/sw.js
    await withSession('/', async (s) => {
      const items = await enqueueOffline(
        s,
        Array.from({ length: N }, (_, i) => ({ url: '/api/notes', queue: 'batched', body: { n: i + 1 } })),
      );
      const st = await waitForRunEnd(s, 'batched');
      expect(st.counts.done).toBe(N);
      const batchRequests = h.log().filter((e) => e.path === '/api/_batch');
      expect(batchRequests).toHaveLength(Math.ceil(N / MAX_ITEMS));
      expect(batchRequests.every((e) => e.status === 200)).toBe(true);
      // No item went alone: every POST /api/notes came inside a batch.
      expect(h.requests.filter((r) => r.path === '/api/notes')).toEqual([]);
      expect(h.api.appliedKeys().sort()).toEqual(items.map((i) => i.key).sort());
      const notes = await (await fetch(`${h.url}/api/notes`)).json();
      expect(notes.map((d) => d.n).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    });
  });

  it('priority: items made offline go critical, high, normal, low with one request at a time', async () => {
    await withSession(`/?sw=${encodeURIComponent('concurrency=1')}`, async (s) => {
      // Enqueued lowest first, so that arrival order (FIFO) would be the reverse.
      const order = ['low', 'normal', 'high', 'critical'];
      const items = await enqueueOffline(
        s,
        order.map((priority) => ({ url: '/api/notes', priority, body: { priority } })),
      );
      await waitForRunEnd(s, 'default');
      const byKey = new Map(items.map((it, i) => [it.key, order[i]]));
      expect(h.api.appliedKeys().map((k) => byKey.get(k))).toEqual(['critical', 'high', 'normal', 'low']);
      expect(h.maxActiveRequests).toBe(1);
    });
  });
});
