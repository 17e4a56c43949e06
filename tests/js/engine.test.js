import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { BgsyncError, MESSAGES } from '../../web/BgsyncError.js';
import { EngineBinding } from '../../sw/EngineBinding.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

/** An engine over a memory store with an injected clock. */
async function openEngine(store = new MemoryStore(), clock = { t: 1_000 }) {
  const engine = await Engine.open(module, store, {
    now: () => clock.t,
    seed: 7,
    installId: 'test',
    queues: [{ name: 'outbox', backoff: { jitter: 'none' } }],
  });
  return { engine, store, clock };
}

const post = (path) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}` });

describe('Engine', () => {
  describe('enqueue → claim → outcome', () => {
    it('delivers items in FIFO order with their bodies and stable keys', async () => {
      const { engine } = await openEngine();
      const a = await engine.enqueue(post('a'), '{"n":1}');
      const b = await engine.enqueue(post('b'), new Uint8Array([0, 1, 2]));
      const items = await engine.claim('outbox', 10);
      expect(items.map((i) => i.id)).toEqual([a.id, b.id]);
      expect(items[0].key).toBe(a.key);
      expect(a.key).toMatch(/^test\./);
      expect(new TextDecoder().decode(engine.body(a.id))).toBe('{"n":1}');
      expect([...engine.body(b.id)]).toEqual([0, 1, 2]);
      const done = await engine.outcome({ id: a.id, attempt: 1, status: 200 });
      expect(done.state).toBe('done');
      expect(engine.status().counts).toMatchObject({ done: 1, inflight: 1 });
      await engine.close();
    });

    it('keeps a failed item out until its retry time, then hands it out again', async () => {
      const { engine, clock } = await openEngine();
      const { id } = await engine.enqueue(post('x'));
      const [item] = await engine.claim('outbox', 1);
      const decision = await engine.outcome({ id, attempt: item.attempt, status: 503 });
      expect(decision).toMatchObject({ state: 'waiting', delayMs: 30_000 });
      clock.t += 29_999;
      expect(await engine.claim('outbox', 1)).toEqual([]);
      expect(engine.status().nextWakeAt).toBe(1_000 + 30_000);
      clock.t += 1;
      const again = await engine.claim('outbox', 1);
      expect(again).toHaveLength(1);
      expect(again[0]).toMatchObject({ id, key: item.key, attempt: 2 });
      await engine.close();
    });
  });

  describe('durability', () => {
    it('reopens from the store with everything that resolved', async () => {
      const store = new MemoryStore();
      const first = await openEngine(store);
      await Promise.all([1, 2, 3].map((i) => first.engine.enqueue(post(`p${i}`))));
      await first.engine.close();
      const second = await openEngine(store);
      expect(second.engine.status().counts.pending).toBe(3);
      await second.engine.close();
    });

    it('shares one flush among calls made together (group commit)', async () => {
      const { engine, store } = await openEngine();
      const before = store.writes;
      await Promise.all(Array.from({ length: 50 }, (_, i) => engine.enqueue(post(`g${i}`))));
      expect(store.writes - before).toBeLessThanOrEqual(2);
      await engine.close();
    });

    it('rejects exactly the calls a failed flush covered and keeps the rest', async () => {
      const { engine, store } = await openEngine();
      await engine.enqueue(post('kept'));
      store.failNext(Object.assign(new Error('full'), { name: 'QuotaExceededError' }));
      const results = await Promise.allSettled([engine.enqueue(post('lost1')), engine.enqueue(post('lost2'))]);
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(results[0].reason).toBeInstanceOf(BgsyncError);
      expect(results[0].reason.code).toBe('storage-quota');
      // The engine reloaded the last durable state and goes on working.
      await engine.enqueue(post('after'));
      const urls = engine.items().map((i) => i.url);
      expect(urls).toEqual(['https://api.test/kept', 'https://api.test/after']);
      await engine.close();
      const reopened = await openEngine(store);
      expect(reopened.engine.items().map((i) => i.url)).toEqual(urls);
      await reopened.engine.close();
    });
  });

  describe('queue limits', () => {
    it('reads the limits the engine applies, also right after a failed flush', async () => {
      const { engine, store } = await openEngine();
      expect(await engine.queueLimits('outbox')).toMatchObject({ maxBodyBytes: 16 * 1024 * 1024 });
      store.failNext(Object.assign(new Error('full'), { name: 'QuotaExceededError' }));
      await expect(engine.enqueue(post('lost'))).rejects.toMatchObject({ code: 'storage-quota' });
      // The engine is reopening from the store: the read waits for it instead of failing.
      expect(await engine.queueLimits('outbox')).toMatchObject({ maxBodyBytes: 16 * 1024 * 1024 });
      await expect(engine.queueLimits('nowhere')).rejects.toMatchObject({ code: 'unknown-queue' });
      await engine.close();
    });
  });

  describe('bad input', () => {
    it.each([
      [{ queue: 'outbox', method: 'POST', url: '/relative' }, 'invalid-url'],
      [{ queue: 'outbox', method: 'BREW', url: 'https://a.test/' }, 'invalid-method'],
      [{ queue: 'nope', method: 'POST', url: 'https://a.test/' }, 'unknown-queue'],
      [{ queue: 'outbox', method: 'POST', url: 'https://a.test/', priority: 'asap' }, 'invalid-priority'],
      [{ queue: 'outbox', method: 'POST', url: 'https://a.test/', headers: { a: 1 } }, 'invalid-argument'],
    ])('rejects %j with %s and stores nothing', async (meta, code) => {
      const { engine, store } = await openEngine();
      const before = store.writes;
      await expect(engine.enqueue(meta)).rejects.toMatchObject({ name: 'BgsyncError', code });
      expect(engine.status().counts.pending).toBe(0);
      expect(store.writes).toBe(before);
      await engine.close();
    });
  });

  it('has a message for every engine result code', () => {
    const codes = new EngineBinding(module).resultCodes();
    expect(codes[0]).toBe('ok');
    for (const code of codes.slice(1)) expect(MESSAGES[code]).toEqual(expect.any(String));
  });
});

describe('Engine claim {early: true}', () => {
  it('hands out durable items before the lease is flushed, and waits for an item whose enqueue is not durable yet', async () => {
    const { engine, store } = await openEngine();
    await engine.enqueue(post('durable'));
    // A slow store: every write waits until released.
    const gates = [];
    const write = store.write.bind(store);
    store.write = (changes) => new Promise((resolve, reject) => gates.push(() => write(changes).then(resolve, reject)));
    const early = await engine.claim('outbox', 1, { early: true });
    expect(early.map((i) => i.url)).toEqual(['https://api.test/durable']);
    expect(gates.length).toBe(1); // the lease's flush is still in flight

    const pendingEnqueue = engine.enqueue(post('fresh'));
    let claimed = null;
    const claim = engine.claim('outbox', 1, { early: true }).then((items) => (claimed = items));
    await Promise.resolve();
    await Promise.resolve();
    expect(claimed).toBe(null); // its enqueue is not durable: the claim waits
    // Release the writes as they come (bounded) until the claim has its item.
    for (let i = 0; i < 50 && claimed === null; i++) {
      while (gates.length) gates.shift()();
      await new Promise((r) => setTimeout(r, 0));
    }
    await pendingEnqueue;
    await claim;
    expect(claimed.map((i) => i.url)).toEqual(['https://api.test/fresh']);
    store.write = write;
    await engine.close();
  });
});
