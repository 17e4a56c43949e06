/**
 * Two tabs and a worker update during a replay (real Chromium): v1 replays a backlog to a
 * slow server (300 ms a request, concurrency 2) while two tabs are open; mid-replay a
 * changed worker script (v2: another query, new bytes) is registered, installs, skips
 * waiting and claims both tabs. StoreLock.js (a Web Lock) must keep v2 off the store
 * until v1 lets go.
 *
 * Judged by the server's log:
 *  - never two owners in effect: no item is sent twice while its lease holds (the lease is
 *    60 s, the whole replay takes less, so any repeat of a key before the clock is moved
 *    is a violation), and no key is applied twice;
 *  - nothing lost: after the update (and the engine clock moved past the leases of
 *    requests that died with v1), every acknowledged item is applied exactly once;
 *  - both tabs end up talking to v2.
 */
import { join } from 'node:path';
import { E2eHarness, ROOT } from './support/E2eHarness.js';

const N = 24;
const page = (version) => `/?timeoutMs=20000&sw=${encodeURIComponent(`version=${version}&concurrency=2`)}`;

let h;
beforeAll(async () => {
  h = await E2eHarness.start({ fixtureDir: join(ROOT, 'tests/e2e/fixtures-faults') });
});
afterAll(async () => {
  await h?.stop();
});

describe('Worker update during replay', () => {
  it('hands the store from v1 to v2 with two tabs open: one owner, nothing lost, nothing sent twice under a lease', async () => {
    h.reset();
    const s = await h.open(page('v1'));
    try {
      const tab2 = await s.openTab(page('v1'));
      const hello1 = await s.call((c) => c.info.instanceId);
      h.api.faults.set({ latencyMs: 300 });
      // The backlog: half from each tab, a few entities, acknowledged before the update.
      const acks = [];
      for (let i = 0; i < N; i++) {
        const target = i % 2 ? tab2 : s.page;
        acks.push(await s.call((c, n) => c.enqueue({ url: '/api/notes', entity: `note:${n % 4}`, body: { n } }), i, { page: target }));
      }
      await h.waitFor(() => h.log().length >= 3, 'v1 replaying');
      const before = h.log().length;

      // Deploy v2 while v1 has requests in flight.
      await s.page.evaluate(async (url) => {
        const reg = await navigator.serviceWorker.register(url, { type: 'module', scope: '/' });
        await reg.update().catch(() => undefined);
      }, `/sw.js?${new URLSearchParams({ version: 'v2', concurrency: '2' })}`);
      await s.waitForVersion((v) => v.status === 'activated' && v.scriptURL.includes('version=v2'), 'v2 activated');
      // Both tabs are claimed by v2 and talk to it.
      for (const p of [s.page, tab2]) {
        await h.waitFor(() => p.evaluate(() => navigator.serviceWorker.controller?.scriptURL.includes('version=v2')), 'a tab controlled by v2');
      }
      const inFlightAtUpdate = h.log().length - before;

      // Repeats so far would be sends under a live lease (60 s) -- two owners in effect.
      h.api.faults.set({ latencyMs: 0 });
      const keysUntilNow = h.log().map((e) => e.key);
      const repeatsUnderLease = keysUntilNow.filter((k, i) => keysUntilNow.indexOf(k) !== i);

      // Everything reaches the server: v2 replays; leases of requests that died with v1
      // expire when the engine clock moves past them.
      const v2 = await s.call(async (c) => {
        c._ready = null; // talk to the new controller
        await c.ready();
        return c.info.instanceId;
      });
      await s.call((c) => c._request('testClock', { offsetMs: 120_000 }));
      await h.waitFor(async () => {
        await s.call((c) => c.syncNow()).catch(() => undefined);
        const applied = new Set(h.log().filter((e) => e.applied).map((e) => e.key));
        return acks.every((a) => applied.has(a.key));
      }, 'every acknowledged item applied', { timeoutMs: 60_000, intervalMs: 500 });

      const log = h.log();
      const applied = log.filter((e) => e.applied).map((e) => e.key);
      const twice = applied.filter((k, i) => applied.indexOf(k) !== i);
      console.log(
        `update during replay: ${N} acknowledged, ${inFlightAtUpdate} requests during the hand-over, ` +
          `${log.length} requests in all, ${new Set(applied).size} applied, ${log.length - applied.length} repeats (deduped), ` +
          `${repeatsUnderLease.length} repeats under a live lease; worker ${hello1} → ${v2}`,
      );
      expect(v2).not.toBe(hello1);
      expect(repeatsUnderLease).toEqual([]);
      expect(twice).toEqual([]);
      expect(new Set(applied).size).toBe(N);
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics().slice(-4000)}`;
      throw err;
    } finally {
      await s.close();
    }
  }, 240_000);
});
