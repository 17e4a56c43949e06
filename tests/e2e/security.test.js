// What the worker refuses and what it never stores: requests to foreign origins (at
// enqueue, and again at replay: an item stored under a wider allow-list is a dead letter),
// malformed or forged messages, credentials (a hook supplies fresh ones at replay,
// refreshes once on 401 -- success with the new token, or the item parks as `auth` and
// the pages are told). And every open tab hears the same progress and status.
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

  it('refuses at replay an item stored under allow=X once a new worker version no longer allows X: dead, origin-not-allowed', async () => {
    const other = h.url.replace('127.0.0.1', 'localhost');
    h.api.faults.set({ status: 503 });
    await withSession(`/?sw=${encodeURIComponent(`allow=${other}`)}`, async (s) => {
      const foreign = await s.call((c, url) => c.enqueue({ url, body: { n: 1 } }), `${other}/api/notes`);
      const own = await s.call((c) => c.enqueue({ url: '/api/notes', body: { n: 2 } }));
      await h.waitFor(async () => {
        const st = await s.status('default');
        return st.state !== 'running' && st.counts.waiting === 2;
      }, 'both items to fail once under the first version');

      // The update: the same worker without allow= (a changed query is a new version).
      await s.page.evaluate(() => navigator.serviceWorker.register('/sw.js', { type: 'module', scope: '/' }));
      await s.waitForVersion((v) => v.status === 'activated' && v.scriptURL === `${h.url}/sw.js`, 'the version without allow=');
      await s.goto('/');
      const mark = h.requests.length;
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(3_600_000);
      await s.call((c) => c.syncNow('default'));

      const dead = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'dead'), 'a dead event');
      expect(dead.detail).toMatchObject({ id: foreign.id, key: foreign.key, url: `${other}/api/notes`, reason: 'origin-not-allowed' });
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'the own-origin item delivered');
      expect(h.api.appliedKeys()).toEqual([own.key]);
      // Not fetched: no request of the new version went to the other origin, none carried its key.
      const after = h.requests.slice(mark);
      expect(after.filter((r) => !r.headers.host.startsWith('127.0.0.1'))).toEqual([]);
      expect(after.filter((r) => r.headers['idempotency-key'] === foreign.key)).toEqual([]);
      // Kept as a dead letter for the app (retry under a wider allow-list, or discard).
      expect((await s.call((c) => c.deadLetters('default'))).map((i) => [i.id, i.url])).toEqual([[foreign.id, `${other}/api/notes`]]);
      expect((await s.status('default')).counts).toMatchObject({ dead: 1, pending: 0, waiting: 0, inflight: 0 });
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

describe('credentials refresh', () => {
  it('a 401 for a stale token: the hook refreshes once and the same key is delivered with the new token; no auth event', async () => {
    h.api.rejectAuthorization('Bearer token-1'); // token-2 and later are accepted
    await withSession(`/?sw=${encodeURIComponent('auth=1')}`, async (s) => {
      const item = await s.call((c) => c.enqueue({ url: '/api/notes', body: { n: 1 } }));
      await s.call((c) => c.syncNow('default'));
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'delivery');
      expect(h.api.appliedKeys()).toEqual([item.key]);
      const seen = h.requests.filter((r) => r.headers['idempotency-key'] === item.key);
      expect(seen.map((r) => r.headers.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
      expect(h.log().filter((e) => e.key === item.key).map((e) => e.status)).toEqual([401, 201]);

      const completed = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'completed'), 'completed');
      expect(completed.detail.run.states).toEqual({ done: 1 });
      const events = await s.events();
      expect(events.filter((e) => e.type === 'progress').map((e) => [e.detail.key, e.detail.state, e.detail.status])).toEqual([[item.key, 'done', 201]]);
      expect(events.filter((e) => e.type === 'auth')).toEqual([]);
      expect((await s.status('default')).counts).toMatchObject({ auth: 0, pending: 0, waiting: 0, inflight: 0, dead: 0 });
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
      // The status after the run, as each tab heard it: one broadcast, the same for both.
      const finalStatus = (page) =>
        h.waitFor(async () => (await s.events({ page })).find((e) => e.type === 'status' && e.detail.queue === 'default' && e.detail.state === 'completed')?.detail, 'the completed status in each tab');
      const [one, two] = [await finalStatus(s.page), await finalStatus(tab2)];
      expect(one.counts).toMatchObject({ pending: 0, waiting: 0, inflight: 0, dead: 0, auth: 0, conflict: 0 });
      expect(one.lastRun).toMatchObject({ queue: 'default', result: 'completed', attempted: 2 });
      expect(two).toEqual(one);
      // And it is what either tab reads when it asks.
      const asked = await s.status('default');
      expect(asked.counts).toEqual(one.counts);
      expect(asked.state).toBe('completed');
    });
  });
});
