// Coalescing through the wasm module (rules in core/include/bgsync.h, bgs_enqueue).
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

async function openEngine(queue = { coalesce: true }) {
  return Engine.open(module, new MemoryStore(), {
    now: () => 1_000,
    seed: 7,
    installId: 'test',
    queues: [{ name: 'outbox', backoff: { jitter: 'none' }, ...queue }],
  });
}

const change = (method, path) => ({ queue: 'outbox', method, url: `https://api.test/${path}`, entity: 'note:1' });
const text = (u8) => new TextDecoder().decode(u8);

describe('Engine coalescing', () => {
  it('merges PATCH + PATCH into one merge patch that still deletes', async () => {
    const engine = await openEngine();
    const first = await engine.enqueue(change('PATCH', 'notes/1'), '{"a":1,"b":{"c":1}}');
    const second = await engine.enqueue(change('PATCH', 'notes/1'), '{"a":null,"b":{"d":2}}');
    expect(second).toEqual({ id: first.id, key: first.key, coalesced: true });
    expect(JSON.parse(text(engine.body(first.id)))).toEqual({ a: null, b: { c: 1, d: 2 } });
    expect(engine.items()).toHaveLength(1);
    await engine.close();
  });

  it('lets a PUT replace a pending PATCH', async () => {
    const engine = await openEngine();
    const first = await engine.enqueue(change('PATCH', 'notes/1'), '{"a":1}');
    await engine.enqueue(change('PUT', 'notes/1'), '{"whole":true}');
    const [item] = await engine.claim('outbox', 5);
    expect(item).toMatchObject({ id: first.id, method: 'PUT' });
    expect(text(engine.body(first.id))).toBe('{"whole":true}');
    await engine.close();
  });

  it('applies a PATCH to a pending create', async () => {
    const engine = await openEngine();
    const created = await engine.enqueue(change('POST', 'notes'), '{"title":"draft","tmp":1}');
    await engine.enqueue(change('PATCH', 'notes/1'), '{"title":"final","tmp":null}');
    expect(engine.items()).toEqual([expect.objectContaining({ id: created.id, method: 'POST', url: 'https://api.test/notes' })]);
    expect(JSON.parse(text(engine.body(created.id)))).toEqual({ title: 'final' });
    await engine.close();
  });

  it('cancels a pending create and its delete', async () => {
    const engine = await openEngine();
    const created = await engine.enqueue(change('POST', 'notes'), '{}');
    const deleted = await engine.enqueue(change('DELETE', 'notes/1'));
    expect(deleted).toEqual({ id: null, key: null, cancelled: [created.id] });
    expect(engine.items()).toEqual([]);
    await engine.close();
  });

  it('never rewrites an item that was attempted', async () => {
    const engine = await openEngine();
    const first = await engine.enqueue(change('PATCH', 'notes/1'), '{"a":1}');
    await engine.claim('outbox', 1);
    const second = await engine.enqueue(change('PATCH', 'notes/1'), '{"b":2}');
    expect(second.id).not.toBe(first.id);
    expect(text(engine.body(first.id))).toBe('{"a":1}');
    await engine.close();
  });

  it('never rewrites a dead letter sent again whose lease ran out without an outcome', async () => {
    let now = 1_000;
    const engine = await Engine.open(module, new MemoryStore(), {
      now: () => now,
      seed: 7,
      installId: 'test',
      queues: [{ name: 'outbox', backoff: { jitter: 'none' }, coalesce: true, maxAgeMs: 100_000 }],
    });
    const first = await engine.enqueue(change('PATCH', 'notes/1'), '{"a":1}');
    await engine.claim('outbox', 1); // the worker dies: no outcome, the lease runs out
    now = 200_000;
    expect(await engine.claim('outbox', 1)).toEqual([]); // too old: a dead letter
    await engine.deadRetry(first.id);
    const second = await engine.enqueue(change('PATCH', 'notes/1'), '{"b":2}');
    expect(second.id).not.toBe(first.id);
    expect(text(engine.body(first.id))).toBe('{"a":1}');
    await engine.close();
  });

  it('is off unless the queue opts in', async () => {
    const engine = await openEngine({});
    await engine.enqueue(change('PATCH', 'notes/1'), '{"a":1}');
    await engine.enqueue(change('PATCH', 'notes/1'), '{"b":1}');
    expect(engine.items()).toHaveLength(2);
    await engine.close();
  });
});
