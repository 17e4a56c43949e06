// What starts a replay besides `sync`: syncNow, push, periodicsync, and -- where the
// Background Sync API is missing -- the enqueue itself, the page's `online` and
// `visibilitychange`, the page's timer and the worker's start. Plus the time budget, the
// last-chance `sync`, and the states status() reports (idle, scheduled, failed, completed).
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

const withSession = (path, body) => h.withSession(path, body);

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

  it('periodicsync fetches due pulls into the Cache API with their ETag and announces them, then replays', async () => {
    h.api.faults.set({ status: 503 });
    await withSession(`/?sw=${encodeURIComponent('pull=/api/notes/n1')}`, async (s) => {
      // An item that failed once and is due again (clock past its backoff) when periodicsync comes.
      const [item] = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(HOUR_MS);
      const put = await fetch(`${h.url}/api/notes/n1`, { method: 'PUT', body: JSON.stringify({ text: 'hello' }) });
      expect(put.status).toBe(201);
      const firstRequest = h.requests.length;
      await s.dispatchPeriodicSync('bgsync:pulls');
      const pulled = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'pulled'), 'a pulled event');
      expect(pulled.detail.pulls).toEqual([expect.objectContaining({ name: 'notes', state: 'updated', status: 200 })]);
      // The replay follows the pulls, in the same event.
      const st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.lastRun?.trigger === 'periodicsync' && x.state !== 'running' && x;
      }, 'a run triggered by periodicsync');
      expect(st.lastRun).toMatchObject({ result: 'completed', attempted: 1 });
      expect(h.api.appliedKeys().filter((k) => k !== null)).toEqual([item.key]); // null: the PUT above
      expect(h.requests.slice(firstRequest).map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/notes/n1', 'POST /api/notes']);
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
      await s.setClockOffset(2 * HOUR_MS);
      await s.dispatchPeriodicSync('bgsync:pulls');
      await h.waitFor(() => gets().length === 2, 'a conditional GET');
      expect(gets()[1].headers['if-none-match']).toBe('"v1"');
    });
  });
});

describe('The sync event', () => {
  it('a last-chance sync replays, and its run is reported as the last chance', async () => {
    h.api.faults.set({ status: 503 });
    await withSession('/', async (s) => {
      const [item] = await enqueueNotes(s, 1);
      await waitForWaiting(s, 1);
      h.api.faults.set({ status: 0 });
      await s.setClockOffset(HOUR_MS);
      await s.dispatchSync('bgsync:default', { lastChance: true });
      await h.waitFor(() => appliedCount() === 1, 'delivery by the last-chance sync');
      expect(h.api.appliedKeys()).toEqual([item.key]);
      const st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.state !== 'running' && x.lastRun?.trigger === 'sync-last-chance' && x;
      }, 'the last-chance run to end');
      expect(st.lastRun).toMatchObject({ result: 'completed', attempted: 1 });
      expect(st.state).toBe('completed');
    });
  });
});

describe('Status states', () => {
  const INITIAL_MS = 45_000;

  it('idle, failed with the next attempt time, scheduled, failed for a dead letter, completed', async () => {
    await withSession(`/?sw=${encodeURIComponent(`initialMs=${INITIAL_MS}`)}`, async (s) => {
      // A fresh worker: nothing queued, no run yet.
      expect(await s.status('default')).toMatchObject({ state: 'idle', nextAttemptAt: null, lastRun: null });

      // failed: the last run failed and its item waits; nextAttemptAt is when it goes again,
      // the attempt plus the backoff (initialMs, no jitter). Pages got a `failed` event.
      h.api.faults.set({ status: 503 });
      const [first] = await enqueueNotes(s, 1);
      let st = await waitForWaiting(s, 1);
      const [attempt] = await s.call((c, id) => c.attempts({ id }), first.id);
      expect(attempt).toMatchObject({ status: 503, state: 'waiting', delayMs: INITIAL_MS });
      expect(st).toMatchObject({ state: 'failed', nextAttemptAt: attempt.at + INITIAL_MS });
      expect(st.lastRun).toMatchObject({ trigger: 'sync', result: 'failed', remaining: 1 });
      const failed = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'failed'), 'a failed event');
      expect(failed.detail).toMatchObject({ queue: 'default', run: { result: 'failed', attempted: 1, remaining: 1 } });

      // scheduled: work is queued that no run has failed on yet (here: enqueued offline, so
      // Chromium holds the sync). The new item is ready, so the next attempt is now, not
      // the first item's end of backoff.
      await s.context.setOffline(true);
      const [second] = await enqueueNotes(s, 1);
      st = await s.status('default');
      expect(st).toMatchObject({ state: 'scheduled', counts: { pending: 1, waiting: 1 } });
      const queued = (await s.call((c) => c.items({ queue: 'default', state: 'pending' }))).find((i) => i.id === second.id);
      expect(st.nextAttemptAt).toBeGreaterThanOrEqual(queued.dueAt);
      expect(st.nextAttemptAt).toBeLessThanOrEqual(st.now);

      // failed, nothing left: both items are rejected for good (dead letters). Nothing
      // will be retried, so there is no next attempt. (The page replays: Chromium keeps the
      // tag of the failed sync for its own retry, minutes away, and a new register() of a
      // waiting tag does not fire it sooner.)
      h.api.faults.set({ status: 400 });
      await s.setClockOffset(HOUR_MS);
      await s.context.setOffline(false);
      await s.call((c) => c.syncNow('default'));
      st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.state !== 'running' && x.counts.dead === 2 && x;
      }, 'two dead letters');
      expect(st).toMatchObject({ state: 'failed', nextAttemptAt: null, counts: { pending: 0, waiting: 0, inflight: 0 } });
      expect(st.lastRun).toMatchObject({ result: 'failed', remaining: 0 });
      const dead = (await s.events()).filter((e) => e.type === 'dead').map((e) => e.detail.key);
      expect(dead.sort()).toEqual([first.key, second.key].sort());

      // completed: the last run delivered everything it tried (the dead letters stay listed).
      h.api.faults.set({ status: 0 });
      await enqueueNotes(s, 1);
      await s.call((c) => c.syncNow('default'));
      st = await h.waitFor(async () => {
        const x = await s.status('default');
        return x.state === 'completed' && x;
      }, 'a completed state');
      expect(st).toMatchObject({ nextAttemptAt: null, counts: { done: 1, dead: 2 } });
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
