// Batching through the wasm module: the request protocol and per-item results
// (documented in core/include/bgsync.h, bgs_claim_batch / bgs_batch_outcome).
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

async function openEngine(queue = { batch: { url: 'https://api.test/batch', maxItems: 3 } }) {
  const clock = { t: 1_000 };
  const engine = await Engine.open(module, new MemoryStore(), {
    now: () => clock.t,
    seed: 7,
    installId: 'test',
    queues: [{ name: 'outbox', backoff: { jitter: 'none' }, ...queue }],
  });
  return { engine, clock };
}

const req = (path, extra = {}) => ({ queue: 'outbox', method: 'PUT', url: `https://api.test/${path}`, ...extra });
const json = (u8) => JSON.parse(new TextDecoder().decode(u8));
const report = (batch, status, headers) => ({
  items: batch.items.map(({ id, attempt }) => ({ id, attempt })),
  status,
  ...(headers ? { headers } : {}),
});

describe('Engine batching', () => {
  it('claims up to maxItems ready items into one request, entity heads only', async () => {
    const { engine } = await openEngine();
    const a = await engine.enqueue(req('a', { entity: 'e' }), '{"n":1}');
    await engine.enqueue(req('a2', { entity: 'e' }), '{"n":2}');
    const b = await engine.enqueue(req('b'), new Uint8Array([0, 255]));
    const c = await engine.enqueue(req('c', { method: 'DELETE' }));
    const d = await engine.enqueue(req('d'));
    const batch = await engine.claimBatch('outbox');
    expect(batch).toMatchObject({ method: 'POST', url: 'https://api.test/batch', headers: { 'content-type': 'application/json' } });
    expect(batch.items.map((i) => i.id)).toEqual([a.id, b.id, c.id]);
    expect(json(batch.body)).toEqual({
      items: [
        { key: a.key, method: 'PUT', url: 'https://api.test/a', headers: {}, body: '{"n":1}' },
        { key: b.key, method: 'PUT', url: 'https://api.test/b', headers: {}, bodyBase64: 'AP8=' },
        { key: c.key, method: 'DELETE', url: 'https://api.test/c', headers: {} },
      ],
    });
    const rest = await engine.claimBatch('outbox');
    expect(rest.items.map((i) => i.id)).toEqual([d.id]);
    const none = await engine.claimBatch('outbox');
    expect(none.items).toEqual([]);
    expect(none.body.length).toBe(0);
    await engine.close();
  });

  it('applies per-item results and retries items missing from them', async () => {
    const { engine } = await openEngine();
    const ok = await engine.enqueue(req('ok'));
    const gone = await engine.enqueue(req('gone'));
    const missing = await engine.enqueue(req('missing'));
    const batch = await engine.claimBatch('outbox');
    const response = { results: [{ key: ok.key, status: 200 }, { key: gone.key, status: 404 }] };
    const result = await engine.batchOutcome(report(batch, 207), JSON.stringify(response));
    expect(result.batch).toBe('ok');
    expect(result.results.map((r) => [r.id, r.state])).toEqual([
      [ok.id, 'done'],
      [gone.id, 'dead'],
      [missing.id, 'waiting'],
    ]);
    expect(result.results[2].reason).toBe('missing-from-batch');
    await engine.close();
  });

  it.each([
    [503, 'not json', 'failed', 'batch-failed'],
    [0, '', 'failed', 'batch-failed'],
    [200, '<html>', 'bad-response', 'bad-batch-response'],
    [200, '{"results":{}}', 'bad-response', 'bad-batch-response'],
  ])('treats status %i with body %j as a failed attempt of every item', async (status, body, verdict, reason) => {
    const { engine } = await openEngine();
    await engine.enqueue(req('a'));
    await engine.enqueue(req('b'));
    const batch = await engine.claimBatch('outbox');
    const result = await engine.batchOutcome(report(batch, status, { 'retry-after': '60' }), body);
    expect(result.batch).toBe(verdict);
    expect(result.results.map((r) => [r.state, r.reason, r.delayMs])).toEqual([
      ['waiting', reason, 60_000],
      ['waiting', reason, 60_000],
    ]);
    await engine.close();
  });

  it('refuses a batch claim on a queue without a batch endpoint', async () => {
    const { engine } = await openEngine({});
    await expect(engine.claimBatch('outbox')).rejects.toMatchObject({ code: 'batch-not-configured' });
    await expect(engine.batchOutcome({ items: [], status: 200 })).rejects.toMatchObject({ code: 'invalid-argument' });
    await engine.close();
  });
});
