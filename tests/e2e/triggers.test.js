// What starts a replay besides `sync`: syncNow, push, periodicsync, and -- where the
// Background Sync API is missing -- the enqueue itself, the page's `online` and
// `visibilitychange`, the page's timer and the worker's start. Plus the time budget.
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

/** Runs body(s) on a fresh session and adds the browser's console to a failure. */
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

function enqueueNotes(s, count, extra = {}) {
  return s.call(
    async (c, { count, extra }) => {
      const out = [];
      for (let n = 1; n <= count; n++) out.push(await c.enqueue({ url: '/api/notes', body: { n }, ...extra }));
      return out;
    },
    { count, extra },
  );
}

/** Waits until nothing runs and `n` items wait for their backoff. */
function waitForWaiting(s, n) {
  return h.waitFor(async () => {
    const st = await s.status('default');
    return st.state !== 'running' && st.counts.waiting === n && st.counts.inflight === 0 && st;
  }, `${n} waiting item(s)`);
}

const appliedCount = () => h.api.appliedKeys().length;

describe('BgsyncWorker triggers', () => {
  it('syncNow replays at once and resolves when the run is over', async () => {
    h.api.faults.set({ status: 503 });
    await withSession('/', async (s) => {
      const items = await enqueueNotes(s, 2);
      await waitForWaiting(s, 2);
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(HOUR_MS);
      const result = await s.call((c) => c.syncNow('default'));
      expect(result).toEqual({ remaining: 0 });
      // syncNow resolved after the run: the server already has both.
      expect(h.api.appliedKeys().sort()).toEqual(items.map((i) => i.key).sort());
      const st = await s.status('default');
      expect(st.lastRun).toMatchObject({ trigger: 'page', result: 'completed', attempted: 2 });
    });
  });

  it('shows a notification when a run completes, when the app asks for one and may', async () => {
    h.api.faults.set({ status: 503 });
    await withSession(`/?sw=${encodeURIComponent('notify=1')}`, async (s) => {
      await s.context.grantPermissions(['notifications'], { origin: h.url });
      await enqueueNotes(s, 2);
      await waitForWaiting(s, 2);
      const shown = () => s.page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications({ tag: 'bgsync' })).map((n) => [n.title, n.body]));
      expect(await shown()).toEqual([]); // failed runs: the hook answers null
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(HOUR_MS);
      await s.call((c) => c.syncNow('default'));
      expect(await h.waitFor(async () => (await shown()).length > 0 && shown(), 'a notification')).toEqual([['Synced', '2 sent']]);
    });
  });

  it('a push whose payload asks for a sync replays every queue', async () => {
    h.api.faults.set({ status: 503 });
    await withSession('/', async (s) => {
      const items = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(HOUR_MS);
      await s.deliverPush(JSON.stringify({ bgsync: 'other-app' })); // not ours: ignored
      await s.deliverPush(JSON.stringify({ bgsync: 'sync' }));
      await h.waitFor(() => appliedCount() === 1, 'the pushed sync to deliver');
      expect(h.api.appliedKeys()).toEqual([items[0].key]);
      const st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.lastRun?.trigger === 'push' && x;
      }, 'a run triggered by push');
      expect(st.counts.done).toBe(1);
    });
  });

  it('stops taking new items when the event budget is spent; the rest stays queued for the next run', async () => {
    h.api.faults.set({ status: 503 });
    await withSession(`/?sw=${encodeURIComponent('concurrency=1&budgetMs=2000')}`, async (s) => {
      const items = await enqueueNotes(s, 5);
      await waitForWaiting(s, 5);
      h.api.faults.set({ status: 0, latencyMs: 1000 });
      await s.setClockOffset(HOUR_MS);
      const first = await s.call((c) => c.syncNow('default'));
      const afterFirst = appliedCount();
      // 2 s of budget at 1 s per request: two or three claims (fewer on a loaded machine), never all five.
      expect(afterFirst).toBeGreaterThanOrEqual(1);
      expect(afterFirst).toBeLessThan(5);
      expect(first.remaining).toBe(5 - afterFirst);
      const st = await s.status('default');
      expect(st.counts.done).toBe(afterFirst);
      expect(st.counts.pending).toBe(5 - afterFirst); // untouched: not even an attempt counted
      h.api.faults.set({ latencyMs: 0 });
      await s.call((c) => c.syncNow('default'));
      expect(h.api.appliedKeys().sort()).toEqual(items.map((i) => i.key).sort());
    });
  });

  it('a queue without backoff does not make a run hammer the server: an item is claimed at most a few times per run', async () => {
    h.api.faults.set({ status: 503 });
    await withSession(`/?sw=${encodeURIComponent('initialMs=0')}`, async (s) => {
      const [item] = await enqueueNotes(s, 1);
      const st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.lastRun && x.state !== 'running' && x;
      }, 'the automatic run to end');
      expect(st.lastRun).toMatchObject({ result: 'failed', remaining: 1 });
      const tries = h.log().filter((e) => e.key === item.key);
      expect(tries.length).toBeGreaterThanOrEqual(2); // zero backoff: due again at once
      expect(tries.length).toBeLessThanOrEqual(4); // 3 claims + the one that ended the run
    });
  });

  it('periodicsync fetches due pulls into the Cache API with their ETag and announces them', async () => {
    await withSession(`/?sw=${encodeURIComponent('pull=/api/notes/n1')}`, async (s) => {
      const put = await fetch(`${h.url}/api/notes/n1`, { method: 'PUT', body: JSON.stringify({ text: 'hello' }) });
      expect(put.status).toBe(201);
      await s.dispatchPeriodicSync('bgsync:pulls');
      const pulled = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'pulled'), 'a pulled event');
      expect(pulled.detail.pulls).toEqual([expect.objectContaining({ name: 'notes', state: 'updated', status: 200 })]);
      const cached = await s.page.evaluate(async () => {
        const res = await (await caches.open('bgsync-pulls')).match('/api/notes/n1');
        return res && { etag: res.headers.get('etag'), body: await res.json() };
      });
      expect(cached).toMatchObject({ etag: '"v1"', body: { id: 'n1', text: 'hello' } });
      // Within the minimum interval, a second periodicsync fetches nothing.
      const gets = () => h.requests.filter((r) => r.method === 'GET' && r.path === '/api/notes/n1');
      expect(gets()).toHaveLength(1);
      await s.dispatchPeriodicSync('bgsync:pulls');
      await h.waitFor(async () => (await s.events()).filter((e) => e.type === 'pulled').length === 2, 'a second pulled event');
      expect(gets()).toHaveLength(1);
      // Once due again, it asks with If-None-Match.
      await s.setClockOffset(HOUR_MS);
      await s.dispatchPeriodicSync('bgsync:pulls');
      await h.waitFor(() => gets().length === 2, 'a conditional GET');
      expect(gets()[1].headers['if-none-match']).toBe('"v1"');
    });
  });
});

describe('Without the Background Sync API', () => {
  const noSync = (extra = '') => `/?sw=${encodeURIComponent(`backgroundSync=off${extra}`)}`;

  it('replays right after an enqueue, since no sync event will come', async () => {
    await withSession(noSync(), async (s) => {
      expect(await s.page.evaluate(() => window.bgsTest.client.info.backgroundSync)).toBe(false);
      const [item] = await enqueueNotes(s, 1);
      await h.waitFor(() => appliedCount() === 1, 'delivery after enqueue');
      expect(h.api.appliedKeys()).toEqual([item.key]);
    });
  });

  it("replays when the page's `online` and `visibilitychange` fire", async () => {
    h.api.faults.set({ down: true });
    await withSession(noSync(), async (s) => {
      const [a] = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ down: false });
      await s.setClockOffset(HOUR_MS);
      await s.page.evaluate(() => window.dispatchEvent(new Event('online')));
      await h.waitFor(() => appliedCount() === 1, 'delivery on online');
      expect(h.api.appliedKeys()).toEqual([a.key]);
      // The server answered before the worker recorded the run's end: wait for that too.
      await h.waitFor(async () => (await s.status('default')).lastRun?.trigger === 'online', 'the online run to end');

      h.api.faults.set({ down: true });
      const [b] = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ down: false });
      await s.setClockOffset(2 * HOUR_MS);
      await s.page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
      await h.waitFor(() => appliedCount() === 2, 'delivery on visibilitychange');
      expect(h.api.appliedKeys()).toEqual([a.key, b.key]);
      await h.waitFor(async () => (await s.status('default')).lastRun?.trigger === 'visible', 'the visible run to end');
    });
  });

  it("replays on the page's timer while the page is open", async () => {
    h.api.faults.set({ status: 503 });
    await withSession(`${noSync()}&fallbackIntervalMs=200`, async (s) => {
      const [item] = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(HOUR_MS);
      await h.waitFor(() => appliedCount() === 1, 'delivery on the timer');
      expect(h.api.appliedKeys()).toEqual([item.key]);
      const st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.lastRun?.result === 'completed' && x;
      }, 'a completed run');
      expect(st.lastRun.trigger).toBe('timer');
    });
  });

  it('replays when the worker starts (here: a new version of it)', async () => {
    h.api.faults.set({ status: 503 });
    await withSession(noSync(), async (s) => {
      const [item] = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ status: 0 });
      // A new worker version whose clock is an hour ahead: starting is the only trigger.
      await s.page.evaluate(() =>
        navigator.serviceWorker.register(`/sw.js?backgroundSync=off&clockOffsetMs=${3_600_000}`, { type: 'module', scope: '/' }),
      );
      await h.waitFor(() => appliedCount() === 1, 'delivery on worker start', { timeoutMs: 30_000 });
      expect(h.api.appliedKeys()).toEqual([item.key]);
    });
  });
});
