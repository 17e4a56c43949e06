// BgsyncPlugin in a real Workbox worker (workbox-routing + NetworkOnly, bundled with
// esbuild): a POST whose fetch fails is queued durably and delivered by the next sync.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { E2eHarness, ROOT } from './support/E2eHarness.js';

const OUT = join(ROOT, 'tests/artifacts/e2e-workbox');

let h;
beforeAll(async () => {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  await build({
    entryPoints: [join(ROOT, 'tests/e2e/fixtures-workbox/sw.src.js')],
    bundle: true,
    format: 'esm',
    outfile: join(OUT, 'sw.js'),
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  });
  copyFileSync(join(ROOT, 'sw/wasm/bgsync-engine.wasm'), join(OUT, 'bgsync-engine.wasm'));
  copyFileSync(join(ROOT, 'tests/e2e/fixtures/index.html'), join(OUT, 'index.html'));
  h = await E2eHarness.start({ fixtureDir: OUT });
});
afterAll(async () => {
  await h?.stop();
});

describe('BgsyncPlugin', () => {
  it('queues a POST whose network fetch failed (Workbox NetworkOnly) and delivers it on the next sync', async () => {
    h.reset();
    h.api.faults.set({ down: true });
    const s = await h.open('/');
    try {
      await s.page.waitForFunction(() => navigator.serviceWorker.controller, null, { timeout: 20_000 });
      const outcomes = await s.page.evaluate(async () => {
        const post = (n) =>
          fetch('/api/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) }).then(
            (r) => `status ${r.status}`,
            (e) => e.name,
          );
        return [await post(1), await post(2)];
      });
      // The page sees the failure (as with workbox-background-sync) ...
      expect(outcomes).toEqual(['TypeError', 'TypeError']);
      // ... but both requests are stored, with their bodies, in order.
      const items = await s.call((c) => c.items({ queue: 'default' }));
      expect(items.map((i) => [i.method, i.url, i.entity])).toEqual([
        ['POST', `${h.url}/api/notes`, 'workbox'],
        ['POST', `${h.url}/api/notes`, 'workbox'],
      ]);
      await h.waitFor(async () => {
        const st = await s.status('default');
        return st.state !== 'running' && st.counts.inflight === 0 && st;
      }, 'the automatic sync to finish');

      h.api.faults.set({ down: false });
      await s.setClockOffset(3_600_000);
      await s.dispatchSync('bgsync:default');
      await h.waitFor(() => h.api.appliedKeys().length === 2, 'both POSTs delivered');
      expect(h.api.appliedKeys()).toEqual(items.map((i) => i.key));
      const notes = await (await fetch(`${h.url}/api/notes`)).json();
      expect(notes.map((n) => n.n)).toEqual([1, 2]);
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });
});
