// The engine's ordering decisions through the wasm module: priorities, per-entity order,
// leases, queue limits. Same semantics as tests/c/test_queue.c, test_entity.c, test_lease.c.
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

async function openEngine(queue = {}, options = {}) {
  const clock = { t: 1_000 };
  const engine = await Engine.open(module, new MemoryStore(), {
    now: () => clock.t,
    seed: 7,
    installId: 'test',
    queues: [{ name: 'outbox', backoff: { jitter: 'none' }, ...queue }],
    ...options,
  });
  return { engine, clock };
}

const req = (path, extra = {}) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}`, ...extra });

describe('Engine ordering', () => {
  describe('priorities', () => {
    it('claims critical > high > normal > low, then FIFO', async () => {
      const { engine } = await openEngine();
      const low = await engine.enqueue(req('low', { priority: 'low' }));
      const n1 = await engine.enqueue(req('n1'));
      const high = await engine.enqueue(req('high', { priority: 'high' }));
      const crit = await engine.enqueue(req('crit', { priority: 'critical' }));
      const n2 = await engine.enqueue(req('n2', { priority: 'normal' }));
      const items = await engine.claim('outbox', 10);
      expect(items.map((i) => i.id)).toEqual([crit.id, high.id, n1.id, n2.id, low.id]);
      expect(items.map((i) => i.priority)).toEqual(['critical', 'high', 'normal', 'normal', 'low']);
      await engine.close();
    });
  });

  describe('entities', () => {
    it('hands out only the oldest unfinished item of an entity', async () => {
      const { engine } = await openEngine();
      const a1 = await engine.enqueue(req('a1', { entity: 'a' }));
      const a2 = await engine.enqueue(req('a2', { entity: 'a', priority: 'critical' }));
      expect((await engine.claim('outbox', 10)).map((i) => i.id)).toEqual([a1.id]);
      expect(await engine.claim('outbox', 10)).toEqual([]);
      await engine.outcome({ id: a1.id, attempt: 1, status: 200 });
      expect((await engine.claim('outbox', 10)).map((i) => i.id)).toEqual([a2.id]);
      await engine.close();
    });

    it('blocks only the failing entity, never the rest of the queue', async () => {
      const { engine, clock } = await openEngine();
      const a1 = await engine.enqueue(req('a1', { entity: 'a' }));
      await engine.enqueue(req('a2', { entity: 'a' }));
      const b1 = await engine.enqueue(req('b1', { entity: 'b' }));
      const plain = await engine.enqueue(req('plain'));
      const [first] = await engine.claim('outbox', 1);
      expect(first.id).toBe(a1.id);
      await engine.outcome({ id: a1.id, attempt: 1, status: 503 });
      expect((await engine.claim('outbox', 10)).map((i) => i.id)).toEqual([b1.id, plain.id]);
      clock.t += 30_000;
      const again = await engine.claim('outbox', 10);
      expect(again.map((i) => [i.id, i.attempt])).toEqual([[a1.id, 2]]);
      await engine.close();
    });

    it.each([
      [409, 'conflict'],
      [412, 'conflict'],
      [401, 'auth'],
    ])('keeps the entity blocked after %i (%s)', async (status, state) => {
      const { engine, clock } = await openEngine();
      const a1 = await engine.enqueue(req('a1', { entity: 'a' }));
      await engine.enqueue(req('a2', { entity: 'a' }));
      const other = await engine.enqueue(req('other'));
      await engine.claim('outbox', 1);
      const decision = await engine.outcome({ id: a1.id, attempt: 1, status });
      expect(decision.state).toBe(state);
      clock.t += 86_400_000;
      expect((await engine.claim('outbox', 10)).map((i) => i.id)).toEqual([other.id]);
      expect(await engine.claim('outbox', 10)).toEqual([]);
      await engine.close();
    });

    it('moves on when the head becomes a dead letter', async () => {
      const { engine } = await openEngine();
      const a1 = await engine.enqueue(req('a1', { entity: 'a' }));
      const a2 = await engine.enqueue(req('a2', { entity: 'a' }));
      await engine.claim('outbox', 1);
      expect((await engine.outcome({ id: a1.id, attempt: 1, status: 422 })).state).toBe('dead');
      expect((await engine.claim('outbox', 10)).map((i) => i.id)).toEqual([a2.id]);
      await engine.close();
    });
  });

  it('keeps one head per entity when a dead letter sent again waits and another is discarded', async () => {
    const { engine } = await openEngine();
    const d1 = await engine.enqueue(req('d1', { entity: 'e' }));
    const d2 = await engine.enqueue(req('d2', { entity: 'e' }));
    const e3 = await engine.enqueue(req('e3', { entity: 'e' }));
    for (const [id, attempt] of [[d1.id, 1], [d2.id, 1]]) {
      await engine.claim('outbox', 1);
      expect((await engine.outcome({ id, attempt, status: 400 })).state).toBe('dead');
    }
    await engine.deadRetry(d1.id); // behind e3, the entity's head
    await engine.deadDiscard(d2.id);
    expect((await engine.claim('outbox', 10)).map((i) => i.id)).toEqual([e3.id]);
    await engine.close();
  });

  describe('leases', () => {
    it('never hands an item out twice while its lease holds, then again with the same key', async () => {
      const { engine, clock } = await openEngine({}, { leaseMs: 5_000 });
      const { id, key } = await engine.enqueue(req('x'));
      const [first] = await engine.claim('outbox', 5);
      expect(first).toMatchObject({ id, key, attempt: 1, leaseUntil: 6_000 });
      clock.t = 5_999;
      expect(await engine.claim('outbox', 5)).toEqual([]);
      clock.t = 6_000;
      const [second] = await engine.claim('outbox', 5);
      expect(second).toMatchObject({ id, key, attempt: 2 });
      await expect(engine.outcome({ id, attempt: 1, status: 503 })).rejects.toMatchObject({ code: 'stale-outcome' });
      expect(engine.items()[0].attempts).toBe(2);
      await engine.close();
    });
  });

  describe('limits and bad input', () => {
    it('rejects an enqueue past maxItems or maxBytes with queue-full and stores nothing', async () => {
      const { engine } = await openEngine({ maxItems: 2, maxBytes: 10 });
      await engine.enqueue(req('a'), '123456');
      await expect(engine.enqueue(req('b'), '12345')).rejects.toMatchObject({ code: 'queue-full' });
      await engine.enqueue(req('c'), '1234');
      await expect(engine.enqueue(req('d'))).rejects.toMatchObject({ code: 'queue-full' });
      expect(engine.items().map((i) => i.url)).toEqual(['https://api.test/a', 'https://api.test/c']);
      await engine.close();
    });

    it.each([
      [{ maxBodyBytes: 4 }, req('big'), 'body-too-large'],
      [{}, req('x', { entity: 7 }), 'invalid-argument'],
      [{}, { queue: 'outbox', method: 'TRACE', url: 'https://a.test/' }, 'invalid-method'],
    ])('rejects bad input (%j, %j) with %s', async (queue, meta, code) => {
      const { engine } = await openEngine(queue);
      await expect(engine.enqueue(meta, 'hello')).rejects.toMatchObject({ code });
      expect(engine.items()).toEqual([]);
      await engine.close();
    });

    it('reports a claim of an unknown queue as a typed error', async () => {
      const { engine } = await openEngine();
      await expect(engine.claim('nope', 1)).rejects.toMatchObject({ code: 'unknown-queue' });
      await engine.close();
    });
  });
});
