// User constraints in Chromium: the page's real SyncClient reports conditions (its own
// navigator.connection and getBattery readings by itself, the app's through
// reportConditions), the worker holds a constrained queue while they say no, says why in
// its status and a `deferred` event, and sends as soon as a report allows, with no manual
// sync. The fixture worker takes `constraints=...` (tests/e2e/fixtures/sw.js).
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

const withConstraints = (list) => `/?sw=${encodeURIComponent(`constraints=${list}`)}`;

/** Records the page's `deferred` events in window.deferred (the fixture records the others). */
function watchDeferred(s) {
  return s.call((c) => {
    window.deferred = [];
    c.addEventListener('deferred', (e) => window.deferred.push(e.detail));
  });
}

function deferredEvents(s) {
  return s.page.evaluate(() => window.deferred);
}

function enqueueNote(s, n) {
  return s.call((c, body) => c.enqueue({ url: '/api/notes', body }), { n });
}

/**
 * A held item: the enqueue's own sync was deferred (the page heard it), a dispatched
 * `sync` and a syncNow change nothing, and the server saw no request.
 */
async function expectHeld(s, reason) {
  const [event] = await h.waitFor(async () => {
    const list = await deferredEvents(s);
    return list.length > 0 && list;
  }, 'a deferred event');
  expect(event).toMatchObject({ queue: 'default', waitingFor: [reason], remaining: 1 });
  await s.dispatchSync('bgsync:default');
  expect(await s.call((c) => c.syncNow('default'))).toEqual({ remaining: 1, waitingFor: [reason] });
  const st = await s.status('default');
  expect(st.waitingFor).toEqual([reason]);
  expect(st.waitingForByQueue).toEqual({ default: [reason] });
  expect(st.counts).toMatchObject({ pending: 1, done: 0 });
  expect(h.requests.filter((r) => r.path.startsWith('/api/notes'))).toEqual([]);
}

async function expectDelivered(s, item) {
  await h.waitFor(() => h.api.appliedKeys().length === 1, 'delivery after the allowing report');
  expect(h.api.appliedKeys()).toEqual([item.key]);
  const st = await h.waitFor(async () => {
    const x = await s.status('default');
    return x.counts.done === 1 && x.state !== 'running' && x;
  }, 'the run to end');
  expect(st.waitingFor).toEqual([]);
}

describe('User constraints', () => {
  it("the client reports the browser's own readings on connect", async () => {
    await withSession(withConstraints('respectSaveData'), async (s) => {
      // Headless Chromium: no connection type on desktop, Save-Data off, a charging "battery".
      const st = await h.waitFor(async () => {
        const x = await s.status();
        return x.conditions.effectiveType !== null && x.conditions.battery !== null && x;
      }, 'the automatic reports');
      expect(st.conditions).toMatchObject({ saveData: false, metered: null, connectionType: null, battery: { charging: true } });
      expect(st.waitingFor).toEqual([]);
    });
  });

  it('Save-Data on: nothing is sent, the status says why, even after a worker restart; Save-Data off sends at once', async () => {
    await withSession(withConstraints('respectSaveData'), async (s) => {
      await watchDeferred(s);
      const answer = await s.call((c) => c.reportConditions({ saveData: true }));
      expect(answer.waitingFor.default).toEqual(['save-data-off']);
      expect(answer.conditions).toMatchObject({ saveData: true });
      const item = await enqueueNote(s, 1);
      await expectHeld(s, 'save-data-off');

      // The browser kills the worker and starts it for a sync: the report was durable.
      const hello = () => s.call((c) => c._request('hello', {}));
      const before = await hello();
      await s.stopWorker();
      await s.dispatchSync('bgsync:default');
      const st = await s.status('default');
      expect((await hello()).instanceId).not.toBe(before.instanceId); // a new life of the worker
      expect(st.conditions).toMatchObject({ saveData: true });
      expect(st.waitingFor).toEqual(['save-data-off']);
      expect(h.api.appliedKeys()).toEqual([]);

      await s.call((c) => c.reportConditions({ saveData: false }));
      await expectDelivered(s, item);
    });
  });

  it('metered network: held until the app reports an unmetered one', async () => {
    await withSession(withConstraints('unmetered'), async (s) => {
      await watchDeferred(s);
      await s.call((c) => c.reportConditions({ metered: true }));
      const item = await enqueueNote(s, 1);
      await expectHeld(s, 'unmetered-network');
      await s.call((c) => c.reportConditions({ connectionType: 'wifi' }));
      await expectDelivered(s, item);
    });
  });

  it('battery low (not charging, under 15%): held until it charges', async () => {
    await withSession(withConstraints('batteryNotLow'), async (s) => {
      await watchDeferred(s);
      await s.call((c) => c.reportConditions({ battery: { level: 0.05, charging: false } }));
      const item = await enqueueNote(s, 1);
      await expectHeld(s, 'battery-not-low');
      await s.call((c) => c.reportConditions({ battery: { level: 0.05, charging: true } }));
      await expectDelivered(s, item);
    });
  });

  it('a malformed report is refused in the page with invalid-argument and changes nothing', async () => {
    await withSession(withConstraints('batteryNotLow'), async (s) => {
      const r = await s.attempt((c) => c.reportConditions({ battery: { level: 5, charging: false } }));
      expect(r.error).toMatchObject({ code: 'invalid-argument' });
      expect(r.error.message).toMatch(/bad battery.level/);
      const item = await enqueueNote(s, 1);
      await h.waitFor(() => h.api.appliedKeys().length === 1, 'delivery');
      expect(h.api.appliedKeys()).toEqual([item.key]);
    });
  });
});
