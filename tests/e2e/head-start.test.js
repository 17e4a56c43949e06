// Head start in Chromium (sw/HeadStart.js): a worker woken by `sync` from a stopped state
// sends its first request from the ticket stored in IndexedDB before its engine is open,
// leases that item once the engine is, and every item still reaches the server, each
// applied once under its own key.
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

const keyOf = (r) => r.headers['idempotency-key'];

describe('BgsyncWorker head start', () => {
  it('a cold start sends the stored head first, leases it after the open, and delivers everything once', async () => {
    // One request at a time, held by the server: the first is in flight, two wait.
    h.api.faults.set({ latencyMs: 10_000 });
    await h.withSession(`/?sw=${encodeURIComponent('concurrency=1')}`, async (s) => {
      const items = await s.call(async (c) => {
        const out = [];
        for (const n of [1, 2, 3]) out.push(await c.enqueue({ url: '/api/notes', body: { n } }));
        return out;
      });
      await h.waitFor(() => h.requests.some((r) => keyOf(r) === items[0].key), 'the first request in flight');
      // Killed mid-request: the first keeps its lease (a minute); the stored ticket names the second.
      await s.stopWorker();
      h.api.faults.set({ latencyMs: 0 });
      const before = h.requests.length;
      await s.dispatchSync('bgsync:default');
      await h.waitFor(() => h.api.appliedKeys().includes(items[2].key), 'the second and third applied');
      const after = h.requests.slice(before).map(keyOf);
      expect(after.slice(0, 2)).toEqual([items[1].key, items[2].key]);
      const hello = await s.call((c) => c._request('hello', {}));
      expect(hello.diagnostics.headStarts).toEqual({ sent: 1, claimed: 1, orphaned: 0 });
      // The item sent ahead counted one attempt, recorded after the open, and is done.
      const attempts = await s.call((c, id) => c.attempts({ id }), items[1].id);
      expect(attempts.map((a) => a.status)).toEqual([201]);

      // The first comes back once its lease ends (the worker's clock moves, no sleep).
      await s.setClockOffset(3_600_000);
      await s.dispatchSync('bgsync:default');
      await h.waitFor(async () => (await s.status('default')).counts.done === 3, 'all three done');
      const applied = h.api.appliedKeys();
      expect([...applied].sort()).toEqual(items.map((i) => i.key).sort()); // each applied once
    });
  });
});
