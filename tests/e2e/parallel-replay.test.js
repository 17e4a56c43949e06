// Bounded parallel replay: several requests in flight at once, never more than the
// worker's concurrency, and still strictly in order within each entity.
import { E2eHarness } from './support/E2eHarness.js';

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});

describe('Replayer', () => {
  it.each([
    [3, 'concurrency=3'],
    [1, 'concurrency=1'],
  ])('sends up to %i requests at once and keeps per-entity order', async (concurrency, query) => {
    h.reset();
    h.api.faults.set({ status: 503 });
    const s = await h.open(`/?sw=${encodeURIComponent(query)}`);
    try {
      // Three entities, three edits each, interleaved; the head of each fails first.
      const plan = [];
      for (let round = 1; round <= 3; round++) for (const e of ['a', 'b', 'c']) plan.push({ entity: `note:${e}`, round });
      const items = await s.call(async (c, plan) => {
        const out = [];
        for (const p of plan) out.push({ ...p, ...(await c.enqueue({ url: '/api/notes', body: p, entity: p.entity })) });
        return out;
      }, plan);
      await h.waitFor(async () => {
        const st = await s.status('default');
        return st.state !== 'running' && st.counts.waiting === 3 && st.counts.pending === 6 && st.counts.inflight === 0;
      }, 'the three heads to fail once');
      h.maxActiveRequests = 0;
      h.api.faults.set({ status: 0, latencyMs: 150 });
      await s.setClockOffset(3_600_000);
      await s.call((c) => c.syncNow('default'));

      const applied = h.log().filter((e) => e.applied).map((e) => e.key);
      expect(applied.sort()).toEqual(items.map((i) => i.key).sort());
      const order = h.log().filter((e) => e.applied).map((e) => items.find((i) => i.key === e.key));
      for (const e of ['note:a', 'note:b', 'note:c']) {
        expect(order.filter((i) => i.entity === e).map((i) => i.round)).toEqual([1, 2, 3]);
      }
      expect(h.maxActiveRequests).toBeLessThanOrEqual(concurrency);
      // Three independent entities: with room for it, their heads go out together.
      expect(h.maxActiveRequests).toBe(Math.min(concurrency, 3));
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });
});
