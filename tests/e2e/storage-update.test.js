/**
 * One owner during a worker update, in Chromium: the store's Web Lock `bgsync:<name>` is
 * held by exactly one worker before, during and after an update from v1 to v2, the new
 * version opens the store only once the old one let go, and everything v1 acknowledged
 * is there for v2 (IndexedDB and OPFS).
 */
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from '../../demo/server/createServer.js';
import { E2eSession, CHROMIUM_ARGS, ROOT, waitFor } from './support/E2eHarness.js';

const FIXTURES = join(ROOT, 'tests/e2e/fixtures-storage');
const WASM_MOUNT = process.env.BGS_E2E_WASM_DIR ? { '/bgsync/sw/wasm/': process.env.BGS_E2E_WASM_DIR } : {};

let server;
let browser;
beforeAll(async () => {
  server = await createServer({
    mounts: { '/': FIXTURES, '/bgsync/sw/': join(ROOT, 'sw'), '/bgsync/web/': join(ROOT, 'web'), ...WASM_MOUNT },
  });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

/** The holders and waiters of the store's lock, as the page sees them. */
const lockState = (s, name) =>
  s.page.evaluate(async (n) => {
    const q = await navigator.locks.query();
    return { held: q.held.filter((l) => l.name === n).length, pending: q.pending.filter((l) => l.name === n).length };
  }, name);

for (const storage of ['indexeddb', 'opfs']) {
  it(`${storage}: the new worker version takes the store over from the old one, one owner at a time`, async () => {
    const context = await browser.newContext();
    const s = new E2eSession({ url: server.url, sessions: new Set() }, context);
    try {
      const query = (v) => `storage=${storage}&store=upd&v=${v}`;
      await s.init(`/?sw=${encodeURIComponent(query(1))}`, { waitReady: true });
      const before = [];
      for (let i = 0; i < 20; i++) before.push((await s.call((c, n) => c.enqueue({ url: '/api/notes', body: `{"v1":${n}}` }), i)).key);
      expect(await lockState(s, 'bgsync:upd')).toEqual({ held: 1, pending: 0 });

      // The update: v2 installs, skips waiting and activates; v1 goes away.
      await s.page.evaluate((q) => navigator.serviceWorker.register(`/sw.js?${q}`, { type: 'module', scope: '/' }), query(2));
      await s.waitForVersion((v) => v.status === 'activated' && v.scriptURL.includes('v=2'), 'v2 activated');
      // A page of the new version talks to v2. (Not reload(): the fixture registers the
      // worker named by its own URL, and a reload would register v1 again.)
      await s.goto(`/?sw=${encodeURIComponent(query(2))}`);
      const after = [];
      for (let i = 0; i < 5; i++) after.push((await s.call((c, n) => c.enqueue({ url: '/api/notes', body: `{"v2":${n}}` }), i)).key);
      const keys = new Set((await s.call((c) => c.items({ limit: 10000 }))).map((i) => i.key));
      for (const k of [...before, ...after]) expect(keys.has(k)).toBe(true);
      await waitFor(async () => (await lockState(s, 'bgsync:upd')).held === 1, 'one holder of the store lock');
      expect(await lockState(s, 'bgsync:upd')).toEqual({ held: 1, pending: 0 });
    } catch (err) {
      // The stack Jest prints was taken before this line: put the browser's side in it too.
      err.stack = `${err.stack}\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await context.close();
    }
  }, 120_000);
}
