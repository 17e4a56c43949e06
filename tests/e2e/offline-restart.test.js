// A worker the browser stopped while the device is offline must open its engine again:
// that is exactly when the queue is needed. The module comes from the Cache API then
// (precached at install, refreshed on every successful fetch).
import { E2eHarness } from './support/E2eHarness.js';

const WASM_PATH = '/bgsync/sw/wasm/';

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});
beforeEach(() => {
  h.reset();
  h.server.unreachable.clear();
});

describe('BgsyncWorker', () => {
  describe('start without the network', () => {
    it('opens the engine from the cached module, keeps the queue and takes new items', async () => {
      h.api.faults.set({ status: 503 });
      const s = await h.open('/');
      try {
        const first = await s.call((c) => c.enqueue({ url: '/api/notes', body: { n: 1 } }));
        // The module can no longer be fetched; the browser stops the idle worker.
        h.server.unreachable.add(WASM_PATH);
        await s.stopWorker();
        // A page message wakes a fresh worker, which must load the engine from its cache.
        const st = await s.call((c) => c.status('default'));
        // Still queued (pending, backing off, or leased by the attempt the stop cut short).
        expect(st.counts.pending + st.counts.waiting + st.counts.inflight).toBe(1);
        const second = await s.call((c) => c.enqueue({ url: '/api/notes', body: { n: 2 } }));

        // Back online: both reach the server with their keys.
        h.server.unreachable.clear();
        h.api.faults.set({ status: 0 });
        await s.setClockOffset(3_600_000);
        await s.dispatchSync('bgsync:default');
        await h.waitFor(() => h.api.appliedKeys().length === 2, 'both items applied');
        expect(h.api.appliedKeys().sort()).toEqual([first.key, second.key].sort());
      } catch (err) {
        err.message += `\n--- browser ---\n${s.diagnostics()}`;
        throw err;
      } finally {
        await s.close();
      }
    });
  });
});
