// What the worker refuses and what it never stores: requests to foreign origins,
// malformed or forged messages, credentials (a hook supplies fresh ones at replay,
// refreshes once on 401, then parks the item as `auth` and tells the pages). And every
// open tab hears the same progress.
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

async function withSession(path, body) {
  const s = await h.open(path);
  try {
    await body(s);
  } catch (err) {
    err.message += `\n--- browser ---\n${s.diagnostics()}`;
    throw err;
  } finally {
    await s.close();
  }
}

describe('BgsyncWorker security', () => {
  it('refuses an enqueue to a foreign origin with origin-not-allowed, unless allow-listed', async () => {
    const other = h.url.replace('127.0.0.1', 'localhost');
    await withSession('/', async (s) => {
      const refused = await s.attempt((c, url) => c.enqueue({ url, body: { a: 1 } }), `${other}/api/notes`);
      expect(refused.error).toMatchObject({ name: 'BgsyncError', code: 'origin-not-allowed' });
      const bad = await s.attempt((c) => c.enqueue({ url: 'ftp://example.test/x' }));
      expect(bad.error).toMatchObject({ name: 'BgsyncError', code: 'invalid-url' });
      expect(await s.call((c) => c.items())).toEqual([]);
    });
    await withSession(`/?sw=${encodeURIComponent(`allow=${other}`)}`, async (s) => {
      h.api.faults.set({ status: 503 });
      const ok = await s.call((c, url) => c.enqueue({ url, body: { a: 1 } }), `${other}/api/notes`);
      expect(ok).toEqual({ id: expect.any(Number), key: expect.any(String) });
      expect((await s.call((c) => c.items())).map((i) => i.url)).toEqual([`${other}/api/notes`]);
    });
  });

  it('ignores malformed and forged messages and changes nothing', async () => {
    await withSession('/', async (s) => {
      const answers = await s.page.evaluate(async () => {
        const worker = (await navigator.serviceWorker.ready).active;
        const ask = (msg, timeoutMs = 0) =>
          new Promise((resolve) => {
            const ch = new MessageChannel();
            ch.port1.onmessage = (e) => resolve(e.data);
            worker.postMessage(msg, [ch.port2]);
            if (timeoutMs) setTimeout(() => resolve('no answer'), timeoutMs);
          });
        const url = new URL('/api/notes', location.href).href;
        // Not answered at all; each is followed below by a valid request on the same worker,
        // whose answer proves the bad one was handled (messages are handled in order).
        worker.postMessage({ bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'POST', url } }); // no reply port
        ask({ bgsync: 1, type: 'dropTables', args: {} });
        ask({ bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'BREW', url } });
        ask({ bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'POST', url, headers: { 'x-n': 1 } } });
        ask({ bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'POST', url, headers: { 'x-a': 'a\r\nInjected: 1' } } });
        ask({ bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'POST', url, body: { not: 'bytes' } } });
        ask({ bgsync: 1, type: 'enqueue', args: { queue: 'x'.repeat(65), method: 'POST', url } });
        ask({ bgsync: 1, type: 'retryDead', args: { id: '1; DROP TABLE items' } });
        ask('just a string');
        const mismatch = await ask({ bgsync: 99, type: 'status', args: {} });
        const hello = await ask({ bgsync: 1, type: 'hello', args: {} });
        return { mismatch, hello };
      });
      expect(answers.mismatch).toMatchObject({ ok: false, error: { code: 'protocol-mismatch' } });
      // 8 bgsync-shaped messages refused (the plain string is not ours and is left alone), plus the mismatch.
      expect(answers.hello.result.diagnostics.ignoredMessages).toBe(9);
      expect(await s.call((c) => c.items())).toEqual([]);
      // Nothing went out for them (a stray preflight of the previous test's session may arrive late: no key).
      expect(h.log().filter((e) => e.key !== null)).toEqual([]);
    });
  });

  it('strips stored credentials, asks the hook at replay, refreshes once on 401, then parks the item as auth', async () => {
    h.api.faults.set({ status: 401 });
    await withSession(`/?sw=${encodeURIComponent('auth=1')}`, async (s) => {
      const item = await s.call((c) =>
        c.enqueue({
          url: '/api/notes',
          body: { n: 1 },
          headers: { Authorization: 'Bearer stale-from-page', Cookie: 'session=secret', 'X-Trace': 'kept' },
        }),
      );
      const authEvent = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'auth'), 'an auth event');
      expect(authEvent.detail).toMatchObject({ id: item.id, key: item.key, status: 401 });
      const tried = h.requests.filter((r) => r.headers['idempotency-key'] === item.key);
      // First attempt with the hook's token, one refresh, then no more.
      expect(tried.map((r) => r.headers.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
      for (const r of tried) {
        expect(r.headers.cookie ?? '').not.toContain('secret');
        expect(r.headers['x-trace']).toBe('kept');
      }
      expect((await s.status('default')).counts.auth).toBe(1);

      // The app got fresh credentials: release the item; the next sync delivers it.
      h.api.faults.set({ status: 0 });
      const released = await s.call((c) => c.releaseAuth('default'));
      expect(released).toMatchObject({ released: 1 });
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'delivery after releaseAuth');
      expect(h.api.appliedKeys()).toEqual([item.key]);
      expect(h.requests.at(-1).headers.authorization).toBe('Bearer token-2');
    });
  });
});

describe('SyncClient', () => {
  it('two tabs receive the same progress and status', async () => {
    h.api.faults.set({ status: 503 });
    await withSession('/', async (s) => {
      const tab2 = await s.openTab('/');
      const items = await s.call(async (c) => [
        await c.enqueue({ url: '/api/notes', body: { n: 1 }, entity: 'e' }),
        await c.enqueue({ url: '/api/notes', body: { n: 2 }, entity: 'e' }),
      ]);
      await h.waitFor(async () => {
        const st = await s.status('default');
        return st.state !== 'running' && st.counts.waiting === 1 && st.counts.pending === 1;
      }, 'the head to fail once');
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(3_600_000);
      await s.call((c) => c.syncNow('default'));
      const doneIn = async (page) =>
        (await s.events({ page })).filter((e) => e.type === 'progress' && e.detail.state === 'done').map((e) => e.detail);
      for (const page of [s.page, tab2]) {
        const progress = await h.waitFor(async () => {
          const p = await doneIn(page);
          return p.length === 2 && p;
        }, 'two progress events in each tab');
        expect(progress.map((p) => p.key)).toEqual(items.map((i) => i.key));
        expect(progress.at(-1)).toMatchObject({ queue: 'default', done: 2, total: 2 });
        const completed = await h.waitFor(async () => (await s.events({ page })).find((e) => e.type === 'completed'), 'completed in each tab');
        expect(completed.detail.queue).toBe('default');
      }
    });
  });
});
