/**
 * User constraints (sw/Conditions.js): pages report the device's conditions (metered
 * network, Save-Data, battery), the worker keeps the last report durably and holds back
 * the queues whose constraints it does not meet. The real SyncClient talks to a real
 * BgsyncWorker (wasm engine over a MemoryStore) in one Node process; fetch, the Cache API
 * and navigator.connection / getBattery are fakes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WASM_DIR } from './support/loadWasm.js';
import { BgsyncWorker } from '../../sw/BgsyncWorker.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { SyncClient } from '../../web/SyncClient.js';

const ORIGIN = 'https://app.test';

let wasmModule;
beforeAll(async () => {
  wasmModule = await WebAssembly.compile(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
});

/** Polls `predicate` until truthy (bounded): no fixed waits. */
async function waitFor(predicate, what, timeoutMs = 5000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await predicate();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A Cache API with one cache per name, in memory; shared by two worker lives = a restart. */
function fakeCaches() {
  const byName = new Map();
  return {
    byName,
    async open(name) {
      if (!byName.has(name)) byName.set(name, new Map());
      const m = byName.get(name);
      return {
        match: async (key) => m.get(String(key))?.clone(),
        put: async (key, res) => {
          m.set(String(key), res);
        },
      };
    },
  };
}

/** A structured clone made in this realm (see support/pageAndWorker.js). */
function cloneHere(v) {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof ArrayBuffer || Object.prototype.toString.call(v) === '[object ArrayBuffer]') return v.slice(0);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (Array.isArray(v)) return v.map(cloneHere);
  const out = {};
  for (const k of Object.keys(v)) out[k] = cloneHere(v[k]);
  return out;
}

/**
 * A worker (no Background Sync API: an enqueue replays at once) and a page whose SyncClient
 * hears the worker's broadcasts. `sent` lists the URLs the worker fetched.
 */
function setup({ queues = [{ name: 'default' }, { name: 'free' }], constraints, caches = fakeCaches(), store = new MemoryStore(), watchConditions = false, now, conditionsMaxAgeMs } = {}) {
  const sent = [];
  const logs = [];
  const events = [];
  const pageListeners = [];
  const scope = {
    location: new URL(`${ORIGIN}/sw.js`),
    addEventListener() {},
    caches,
    fetch: async (url) => {
      sent.push(String(url));
      return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
    },
    clients: {
      matchAll: async () => [{ postMessage: (msg) => pageListeners.forEach((l) => l({ data: cloneHere(msg) })) }],
    },
  };
  const worker = new BgsyncWorker({
    queues,
    constraints,
    now,
    conditionsMaxAgeMs,
    storage: store,
    wasmModule,
    blobStore: false,
    logger: { warn: (m) => logs.push(m), info: () => {} },
  });
  worker.listen(scope);
  const deliver = (data, port) => worker._onMessage({ data, origin: ORIGIN, source: { url: `${ORIGIN}/page` }, ports: port ? [port] : [], waitUntil() {} });
  const active = {
    postMessage(msg, transfer = []) {
      deliver(cloneHere(msg), transfer.find((x) => typeof x?.postMessage === 'function'));
    },
  };
  const container = {
    ready: Promise.resolve({ active }),
    addEventListener: (type, l) => type === 'message' && pageListeners.push(l),
    removeEventListener() {},
  };
  const client = new SyncClient({ serviceWorker: container, baseUrl: `${ORIGIN}/page`, timeoutMs: 5000, watchConditions });
  client.addEventListener('deferred', (e) => events.push(e.detail));
  return { worker, client, sent, logs, events, deliver, caches, store };
}

const url = (path) => `${ORIGIN}${path}`;

describe('conditions reports are validated', () => {
  const BAD = [
    [{ metered: 'yes' }, 'metered'],
    [{ saveData: 1 }, 'saveData'],
    [{ battery: 0.5 }, 'battery'],
    [{ battery: { level: 1.5, charging: false } }, 'battery.level'],
    [{ battery: { level: -0.1, charging: true } }, 'battery.level'],
    [{ battery: { level: Number.NaN, charging: true } }, 'battery.level'],
    [{ battery: { level: 0.5 } }, 'battery.charging'],
    [{ battery: { level: 0.5, charging: 'no' } }, 'battery.charging'],
    [{ battery: { level: 0.5, charging: false, chargingTime: 0 } }, 'battery'],
    [{ connectionType: '5g' }, 'connectionType'],
    [{ effectiveType: '5g' }, 'effectiveType'],
    [{ metred: true }, 'field metred'],
    [{}, 'report (no condition in it)'],
  ];

  it.each(BAD)('the page refuses %j with invalid-argument (bad %s)', async (report, reason) => {
    const t = setup();
    await expect(t.client.reportConditions(report)).rejects.toMatchObject({ code: 'invalid-argument', message: expect.stringContaining(`bad ${reason}`) });
    t.client.close();
  });

  it.each(BAD)('the worker ignores %j sent past the page, logs why and keeps nothing', async (report, reason) => {
    const t = setup({ constraints: { unmetered: true, respectSaveData: true, batteryNotLow: true } });
    const { port1, port2 } = new MessageChannel();
    const answers = [];
    port1.onmessage = (e) => answers.push(e.data);
    try {
      t.deliver({ bgsync: 1, type: 'reportConditions', args: report }, port2);
      expect(t.worker.diagnostics.lastIgnoredReason).toBe(`reportConditions: bad ${reason}`);
      expect(t.logs).toContain(`bgsync: message ignored: reportConditions: bad ${reason}`);
      await expect(t.worker.reportConditions(report)).rejects.toMatchObject({ code: 'invalid-argument' });
      expect((await t.worker.status()).conditions).toMatchObject({ metered: null, saveData: null, battery: null, reportedAt: null });
      expect(answers).toEqual([]);
    } finally {
      port1.close(); // an open port would keep Jest from exiting
    }
  });

  it('a source other than browser or app is refused; the page may not pick one', async () => {
    const t = setup();
    const { port1, port2 } = new MessageChannel();
    t.deliver({ bgsync: 1, type: 'reportConditions', args: { source: 'server', metered: true } }, port2);
    port1.close();
    expect(t.worker.diagnostics.lastIgnoredReason).toBe('reportConditions: bad source');
    await expect(t.client.reportConditions({ source: 'browser', metered: true })).rejects.toMatchObject({ code: 'invalid-argument' });
    t.client.close();
  });

  it.each([
    [{ constraints: { unmeterd: true } }, /unknown constraint 'unmeterd'/],
    [{ constraints: { unmetered: 'yes' } }, /constraints.unmetered must be true or false/],
    [{ constraints: { batteryNotLow: true, lowBatteryLevel: 2 } }, /lowBatteryLevel/],
    [{ queues: [{ name: 'q', constraints: ['unmetered'] }] }, /queue 'q': constraints must be an object/],
  ])('a worker configured with %j throws invalid-argument', (options, message) => {
    expect(() => new BgsyncWorker({ storage: 'memory', ...options })).toThrow(message);
    try {
      new BgsyncWorker({ storage: 'memory', ...options }); // eslint-disable-line no-new
    } catch (err) {
      expect(err.code).toBe('invalid-argument');
    }
  });
});

describe('a queue with a constraint', () => {
  it.each([
    ['unmetered', { metered: true }, 'unmetered-network', { metered: false }],
    ['respectSaveData', { saveData: true }, 'save-data-off', { saveData: false }],
    ['batteryNotLow', { battery: { level: 0.1, charging: false } }, 'battery-not-low', { battery: { level: 0.1, charging: true } }],
  ])('%s: holds its items while the report says no, and sends them as soon as a report allows', async (constraint, no, reason, yes) => {
    const t = setup({ queues: [{ name: 'default', constraints: { [constraint]: true } }, { name: 'free' }] });
    expect(await t.client.reportConditions(no)).toMatchObject({ waitingFor: { default: [reason] } });
    await t.client.enqueue({ url: '/api/held', body: { n: 1 } });
    await t.client.enqueue({ url: '/api/free', body: { n: 2 }, queue: 'free' });
    await waitFor(() => t.sent.length === 1, 'the unconstrained queue to send');
    const run = await t.client.syncNow();
    expect(run).toEqual({ remaining: 1, waitingFor: [reason] });
    expect(t.sent).toEqual([url('/api/free')]);
    const st = await t.client.status('default');
    expect(st.waitingFor).toEqual([reason]);
    expect(st.waitingForByQueue).toEqual({ default: [reason] });
    expect(st.counts).toMatchObject({ pending: 1, done: 0 });
    expect((await t.client.status('free')).waitingFor).toEqual([]);
    // One event when the queue started waiting, not one per trigger.
    await waitFor(() => t.events.length > 0, 'a deferred event');
    expect(t.events).toEqual([{ queue: 'default', waitingFor: [reason], remaining: 1, trigger: 'enqueue' }]);

    await t.client.reportConditions(yes);
    await waitFor(() => t.sent.length === 2, 'the held item to go');
    expect(t.sent).toEqual([url('/api/free'), url('/api/held')]);
    const after = await waitFor(async () => {
      const x = await t.client.status('default');
      return x.counts.done === 1 && x.state !== 'running' && x;
    }, 'the run to end');
    expect(after.waitingFor).toEqual([]);
    expect(after.lastRun).toMatchObject({ trigger: 'conditions', result: 'completed', attempted: 1 });
    t.client.close();
  });

  it('battery: low means not charging and under lowBatteryLevel; a queue may opt out of the worker-wide default', async () => {
    const t = setup({
      constraints: { batteryNotLow: true, lowBatteryLevel: 0.3 },
      queues: [{ name: 'default' }, { name: 'free', constraints: { batteryNotLow: false } }],
    });
    await t.client.reportConditions({ battery: { level: 0.29, charging: false } });
    await t.client.enqueue({ url: '/api/held' });
    await t.client.enqueue({ url: '/api/free', queue: 'free' });
    await waitFor(() => t.sent.length === 1, 'the opted-out queue to send');
    expect((await t.client.syncNow()).waitingFor).toEqual(['battery-not-low']);
    expect(t.sent).toEqual([url('/api/free')]);
    await t.client.reportConditions({ battery: { level: 0.3, charging: false } }); // at the threshold: not low
    await waitFor(() => t.sent.length === 2, 'delivery once not low');
    t.client.close();
  });

  it('a sync event deferred by constraints resolves (a browser retry would see the same report)', async () => {
    const t = setup({ constraints: { unmetered: true } });
    await t.client.reportConditions({ connectionType: 'cellular' });
    await t.client.enqueue({ url: '/api/held' });
    let promise;
    await t.worker._onSync({ tag: 'bgsync:default', lastChance: false, waitUntil: (p) => { promise = p; } });
    await expect(promise).resolves.toBeUndefined();
    expect(t.sent).toEqual([]);
    expect((await t.worker.status()).waitingFor).toEqual(['unmetered-network']);
    t.client.close();
  });
});

describe("what nobody reported counts as allowed ('unknown')", () => {
  it('with every constraint on and no report, items are sent', async () => {
    const t = setup({ constraints: { unmetered: true, respectSaveData: true, batteryNotLow: true } });
    await t.client.enqueue({ url: '/api/a' });
    await waitFor(() => t.sent.length === 1, 'delivery with nothing reported');
    const st = await t.client.status();
    expect(st.conditions).toEqual({ metered: null, saveData: null, battery: null, connectionType: null, effectiveType: null, reportedAt: null });
    expect(st.waitingFor).toEqual([]);
    t.client.close();
  });

  it('a connection type that does not say whether it costs leaves metered unknown', async () => {
    const t = setup({ constraints: { unmetered: true } });
    await t.client.reportConditions({ connectionType: 'cellular' });
    await t.client.enqueue({ url: '/api/a' });
    expect((await t.client.syncNow()).waitingFor).toEqual(['unmetered-network']);
    expect((await t.client.reportConditions({ connectionType: 'other' })).conditions.metered).toBeNull();
    await waitFor(() => t.sent.length === 1, 'delivery once metered is unknown');
    t.client.close();
  });

  it("an app's report wins over the browser's; null withdraws it and the browser's applies again", async () => {
    const t = setup({ constraints: { respectSaveData: true } });
    await t.worker.reportConditions({ source: 'browser', saveData: true });
    await t.client.enqueue({ url: '/api/a' });
    expect((await t.client.syncNow()).waitingFor).toEqual(['save-data-off']);
    await t.client.reportConditions({ saveData: false });
    await waitFor(() => t.sent.length === 1, 'delivery under the app override');
    await t.worker.reportConditions({ source: 'browser', saveData: true }); // a late browser reading
    await t.client.enqueue({ url: '/api/b' });
    await waitFor(() => t.sent.length === 2, 'the app override to hold');
    await t.client.reportConditions({ saveData: null });
    await t.client.enqueue({ url: '/api/c' });
    expect((await t.client.syncNow()).waitingFor).toEqual(['save-data-off']);
    expect(t.sent).toEqual([url('/api/a'), url('/api/b')]);
    t.client.close();
  });

  it('a report older than conditionsMaxAgeMs counts as unknown', async () => {
    let clock = 1_000_000;
    const t = setup({ constraints: { unmetered: true }, conditionsMaxAgeMs: 60_000, now: () => clock });
    await t.client.reportConditions({ metered: true });
    await t.client.enqueue({ url: '/api/a' });
    clock += 60_000;
    expect((await t.client.syncNow()).waitingFor).toEqual(['unmetered-network']);
    clock += 1;
    expect(await t.client.syncNow()).toEqual({ remaining: 0 });
    expect(t.sent).toEqual([url('/api/a')]);
    t.client.close();
  });
});

describe('the last report survives a worker restart', () => {
  it('a new worker over the same store and Cache API holds the queue with no page open, and sends after the next report', async () => {
    const caches = fakeCaches();
    const store = new MemoryStore();
    const first = setup({ constraints: { unmetered: true }, caches, store });
    await first.client.reportConditions({ metered: true });
    await first.client.enqueue({ url: '/api/held' });
    expect((await first.client.syncNow()).waitingFor).toEqual(['unmetered-network']);
    first.client.close();
    await first.worker.retire();

    // The browser starts the worker again for a sync event; no page talks to it.
    const second = setup({ constraints: { unmetered: true }, caches, store });
    let promise;
    second.worker._onSync({ tag: 'bgsync:default', lastChance: false, waitUntil: (p) => { promise = p; } });
    await expect(promise).resolves.toBeUndefined();
    const st = await second.worker.status();
    expect(st.conditions).toMatchObject({ metered: true });
    expect(st.waitingFor).toEqual(['unmetered-network']);
    expect(st.counts.pending).toBe(1);
    expect(second.sent).toEqual([]);

    await second.client.reportConditions({ metered: false });
    await waitFor(() => second.sent.length === 1, 'delivery after the new report');
    expect(second.sent).toEqual([url('/api/held')]);
    second.client.close();
  });

  it('a record damaged in storage reads as nothing reported', async () => {
    const caches = fakeCaches();
    const cache = await caches.open('bgsync-conditions');
    await cache.put(`${ORIGIN}/__bgsync/conditions/default`, new Response('{"version":1,"app":{"at":"x","fields":{"metered":true}}}'));
    const t = setup({ constraints: { unmetered: true }, caches });
    await t.client.enqueue({ url: '/api/a' });
    await waitFor(() => t.sent.length === 1, 'delivery');
    expect((await t.client.status()).conditions.metered).toBeNull();
    t.client.close();
  });
});

describe('SyncClient reports the browser conditions by itself', () => {
  let saved;
  beforeEach(() => {
    saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  });
  afterEach(() => {
    if (saved) Object.defineProperty(globalThis, 'navigator', saved);
    else delete globalThis.navigator;
  });

  it('on connect and on every connection or battery change', async () => {
    const connection = Object.assign(new EventTarget(), { type: 'wifi', effectiveType: '4g', saveData: false });
    const battery = Object.assign(new EventTarget(), { level: 0.9, charging: false });
    Object.defineProperty(globalThis, 'navigator', { value: { connection, getBattery: async () => battery }, configurable: true, writable: true });
    const t = setup({ constraints: { unmetered: true, batteryNotLow: true }, watchConditions: true });
    await t.client.ready();
    await waitFor(() => t.worker.conditions.current().battery?.level === 0.9, 'the first reports');
    expect(t.worker.conditions.current()).toMatchObject({ metered: false, saveData: false, connectionType: 'wifi', effectiveType: '4g' });
    await t.client.enqueue({ url: '/api/a' });
    await waitFor(() => t.sent.length === 1, 'delivery on wifi');

    connection.type = 'cellular';
    connection.dispatchEvent(new Event('change'));
    await waitFor(() => t.worker.conditions.current().metered === true, 'the change to be reported');
    battery.level = 0.05;
    battery.dispatchEvent(new Event('levelchange'));
    await waitFor(() => t.worker.conditions.current().battery.level === 0.05, 'the battery change');
    await t.client.enqueue({ url: '/api/b' });
    expect((await t.client.syncNow()).waitingFor).toEqual(['unmetered-network', 'battery-not-low']);

    connection.type = 'ethernet';
    connection.dispatchEvent(new Event('change'));
    battery.charging = true;
    battery.dispatchEvent(new Event('chargingchange'));
    await waitFor(() => t.sent.length === 2, 'delivery once both allow');
    expect(t.sent).toEqual([url('/api/a'), url('/api/b')]);
    t.client.close();
  });

  it('sends a change event only when what it reports changed (Chromium fires them as its estimates move)', async () => {
    const connection = Object.assign(new EventTarget(), { type: 'wifi', effectiveType: '4g', saveData: false, rtt: 50 });
    Object.defineProperty(globalThis, 'navigator', { value: { connection }, configurable: true, writable: true });
    const t = setup({ constraints: { unmetered: true }, watchConditions: true });
    const reports = [];
    const report = t.worker.reportConditions.bind(t.worker);
    t.worker.reportConditions = (r) => {
      reports.push(r);
      return report(r);
    };
    await t.client.ready();
    await waitFor(() => reports.length === 1, 'the report on connect');
    for (let i = 0; i < 20; i++) {
      connection.rtt = 50 + i; // not reported: no message
      connection.dispatchEvent(new Event('change'));
    }
    connection.effectiveType = '3g';
    connection.dispatchEvent(new Event('change'));
    await waitFor(() => reports.length === 2, 'the real change');
    expect(reports.map((r) => r.effectiveType)).toEqual(['4g', '3g']);
    expect((await t.client.status()).conditions.effectiveType).toBe('3g');
    expect(reports).toHaveLength(2);
    t.client.close();
  });
});
