// Outcomes, backoff, the attempt log, dead letters and auth release through the wasm
// module. Same semantics as tests/c/test_outcome.c, test_backoff.c, test_dead.c.
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

async function openEngine(queue = {}, options = {}) {
  const clock = { t: 1_000 };
  const store = options.store ?? new MemoryStore();
  const engine = await Engine.open(module, store, {
    now: () => clock.t,
    seed: 7,
    installId: 'test',
    queues: [{ name: 'outbox', backoff: { jitter: 'none' }, ...queue }],
    ...options,
  });
  return { engine, clock, store };
}

const req = (path, extra = {}) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}`, ...extra });

/** Enqueues, claims and reports one status; returns the decision. */
async function attemptOnce(engine, path, status, headers) {
  const { id } = await engine.enqueue(req(path));
  const claimed = await engine.claim('outbox', 10);
  const item = claimed.find((i) => i.id === id);
  return engine.outcome({ id, attempt: item.attempt, status, headers });
}

describe('Engine outcomes', () => {
  it.each([
    [200, 'done', null],
    [204, 'done', null],
    [0, 'waiting', 'retry'],
    [408, 'waiting', 'retry'],
    [425, 'waiting', 'retry'],
    [429, 'waiting', 'retry'],
    [500, 'waiting', 'retry'],
    [503, 'waiting', 'retry'],
    [409, 'conflict', null],
    [412, 'conflict', null],
    [401, 'auth', 'auth-required'],
    [400, 'dead', 'rejected'],
    [404, 'dead', 'rejected'],
    [422, 'dead', 'rejected'],
  ])('status %i → %s', async (status, state, reason) => {
    const { engine } = await openEngine();
    const decision = await attemptOnce(engine, 's', status);
    expect(decision.state).toBe(state);
    if (reason) expect(decision.reason).toBe(reason);
    await engine.close();
  });

  it('logs every attempt with its time, status and chosen delay', async () => {
    const { engine, clock } = await openEngine();
    const { id } = await engine.enqueue(req('l'));
    await engine.claim('outbox', 1);
    clock.t = 2_000;
    await engine.outcome({ id, attempt: 1, status: 503 });
    clock.t = 32_000;
    await engine.claim('outbox', 1);
    await engine.outcome({ id, attempt: 2, status: 201 });
    expect(engine.attempts({ id })).toEqual([
      { seq: expect.any(Number), id, attempt: 1, at: 2_000, status: 503, state: 'waiting', delayMs: 30_000 },
      { seq: expect.any(Number), id, attempt: 2, at: 32_000, status: 201, state: 'done', delayMs: null },
    ]);
    expect(engine.attempts({ limit: 1 })).toHaveLength(1);
    let error;
    try {
      engine.attempts({ limit: 0 });
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ name: 'BgsyncError', code: 'invalid-argument' });
    await engine.close();
  });

  it('backs off exponentially by default and honours Retry-After within the max', async () => {
    const { engine, clock } = await openEngine();
    const { id } = await engine.enqueue(req('b'));
    const delays = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      const [item] = await engine.claim('outbox', 1);
      expect(item.attempt).toBe(attempt);
      const d = await engine.outcome({ id, attempt, status: 500 });
      delays.push(d.delayMs);
      clock.t = d.dueAt;
    }
    expect(delays).toEqual([30_000, 60_000, 120_000, 240_000]);
    await engine.claim('outbox', 1);
    const capped = await engine.outcome({ id, attempt: 5, status: 429, headers: { 'Retry-After': '86400' } });
    expect(capped.delayMs).toBe(3_600_000);
    await engine.close();
  });

  it('uses linear backoff and seeded jitter the same way as natively', async () => {
    const { engine } = await openEngine({ backoff: { kind: 'linear', initialMs: 1_000, jitter: 'none' } });
    const { id } = await engine.enqueue(req('lin'));
    const [item] = await engine.claim('outbox', 1);
    expect((await engine.outcome({ id, attempt: item.attempt, status: 503 })).delayMs).toBe(1_000);
    await engine.close();
    const a = await openEngine({ backoff: { jitter: 'full' } }, { seed: 99 });
    const b = await openEngine({ backoff: { jitter: 'full' } }, { seed: 99 });
    const da = await attemptOnce(a.engine, 'j', 503);
    const db = await attemptOnce(b.engine, 'j', 503);
    expect(da.delayMs).toBe(db.delayMs);
    expect(da.delayMs).toBeGreaterThanOrEqual(0);
    expect(da.delayMs).toBeLessThanOrEqual(30_000);
    await a.engine.close();
    await b.engine.close();
  });

  it('makes dead letters at max attempts and max age, also at claim time', async () => {
    const { engine, clock } = await openEngine({ maxAttempts: 1, maxAgeMs: 10_000 });
    const d = await attemptOnce(engine, 'm', 500);
    expect(d).toMatchObject({ state: 'dead', reason: 'max-attempts' });
    const { id } = await engine.enqueue(req('old'));
    clock.t += 10_001;
    expect(await engine.claim('outbox', 5)).toEqual([]);
    expect(engine.items({ state: 'dead' }).find((i) => i.id === id)).toMatchObject({ reason: 'expired', attempts: 0 });
    await engine.close();
  });
});

describe('Engine delivered history', () => {
  it('keeps the newest keepDone delivered items of a queue, durably, and never reuses an id', async () => {
    const { engine, store } = await openEngine({ keepDone: 2 });
    const ids = [];
    for (const path of ['a', 'b', 'c']) {
      const d = await attemptOnce(engine, path, 200);
      expect(d.state).toBe('done');
      ids.push(d.id);
    }
    const dead = await attemptOnce(engine, 'x', 400);
    expect(engine.items({ state: 'done' }).map((i) => i.id)).toEqual(ids.slice(1));
    expect(engine.status().counts).toMatchObject({ done: 2, dead: 1 });
    await engine.close();
    const reopened = await openEngine({ keepDone: 2 }, { store });
    expect(reopened.engine.items().map((i) => [i.id, i.state])).toEqual([[ids[1], 'done'], [ids[2], 'done'], [dead.id, 'dead']]);
    const { id } = await reopened.engine.enqueue(req('d'));
    expect(id).toBeGreaterThan(dead.id);
    await reopened.engine.close();
  });

  it('rejects a keepDone that is not an integer from 0 to 1e9 with invalid-argument', async () => {
    for (const keepDone of [-1, 1.5, '10', 1_000_000_001]) {
      await expect(openEngine({ keepDone })).rejects.toMatchObject({ code: 'invalid-argument' });
    }
  });
});

describe('Engine dead letters and credentials', () => {
  it('lists dead letters, retries one with the same key and discards another', async () => {
    const { engine } = await openEngine();
    const a = await engine.enqueue(req('a'));
    const b = await engine.enqueue(req('b'));
    await engine.claim('outbox', 5);
    await engine.outcome({ id: a.id, attempt: 1, status: 400 });
    await engine.outcome({ id: b.id, attempt: 1, status: 403 });
    expect(engine.items({ state: 'dead' }).map((i) => i.id)).toEqual([a.id, b.id]);
    await engine.deadRetry(a.id);
    await engine.deadDiscard(b.id);
    expect(engine.items().map((i) => [i.id, i.state, i.attempts])).toEqual([[a.id, 'pending', 0]]);
    const [again] = await engine.claim('outbox', 5);
    expect(again).toMatchObject({ id: a.id, key: a.key, attempt: 1 });
    await expect(engine.deadRetry(a.id)).rejects.toMatchObject({ code: 'invalid-state' });
    await expect(engine.deadDiscard(9999)).rejects.toMatchObject({ code: 'not-found' });
    await engine.close();
  });

  it('releases items waiting for credentials, durably', async () => {
    const { engine, store } = await openEngine();
    const d = await attemptOnce(engine, 'u', 401);
    expect(d.state).toBe('auth');
    expect(await engine.authRelease('outbox')).toEqual({ released: 1 });
    await engine.close();
    const reopened = await openEngine({}, { store });
    expect(reopened.engine.status().counts).toMatchObject({ pending: 1, auth: 0 });
    expect(await reopened.engine.authRelease(null)).toEqual({ released: 0 });
    await expect(reopened.engine.authRelease('nope')).rejects.toMatchObject({ code: 'unknown-queue' });
    await reopened.engine.close();
  });
});
