/**
 * Strategy 'custom': the engine parks the conflict for the app's resolver, and the
 * Replayer asks the worker's resolveConflict hook at once (sw/Replayer.js _resolveCustom).
 * The real engine; fetch is a function answering like the reference API (412 with the
 * current document and its ETag, then 200 for a matching If-Match).
 */
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { Replayer } from '../../sw/Replayer.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

const REMOTE = { title: 'theirs', body: 'shared' };

/** A server whose note is at version "v2": a stale If-Match gets 412 + the document. */
function server() {
  const sent = [];
  const fetch = async (url, init) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const body = init.body ? new TextDecoder().decode(new Uint8Array(await new Response(init.body).arrayBuffer())) : null;
    sent.push({ url, method: init.method, ifMatch: headers['if-match'] ?? null, body });
    if (headers['if-match'] !== '"v2"') {
      return new Response(JSON.stringify(REMOTE), { status: 412, headers: { etag: '"v2"', 'content-type': 'application/json' } });
    }
    return new Response('{}', { status: 200, headers: { etag: '"v3"' } });
  };
  return { sent, fetch };
}

async function run(resolveConflict, { strategy = 'custom' } = {}) {
  const engine = await Engine.open(module, new MemoryStore(), {
    now: () => 1_000_000,
    seed: 1,
    installId: 'cus',
    queues: [{ name: 'q', backoff: { jitter: 'none', initialMs: 0 }, conflict: { strategy } }],
  });
  const { id } = await engine.enqueue(
    { queue: 'q', method: 'PUT', url: 'https://app.test/api/notes/1', entity: 'note:1', baseVersion: '"v1"', baseDocument: { title: 'base', body: 'shared' } },
    JSON.stringify({ title: 'mine', body: 'shared' }),
  );
  const { sent, fetch } = server();
  const decisions = [];
  const calls = [];
  const hook = resolveConflict
    ? async (c) => {
        calls.push(c);
        return resolveConflict(c);
      }
    : undefined;
  const replayer = new Replayer({ engine, fetch, concurrency: 1, requestTimeoutMs: 5_000, resolveConflict: hook, onOutcome: (item, d) => decisions.push(d) });
  await replayer.run('q', { deadlineMs: Infinity });
  const item = engine.items().find((i) => i.id === id);
  const [conflict] = engine.conflicts({});
  await engine.close();
  return { item, conflict, sent, calls, decisions };
}

describe("Replayer with strategy 'custom'", () => {
  it("sends the resolver's document against the server's version, at once", async () => {
    const { item, conflict, sent, calls } = await run((c) => ({ document: { ...c.remote, title: `${c.local.title} + ${c.remote.title}` } }));
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ strategy: 'custom', custom: true, state: 'open', local: { title: 'mine' }, remote: REMOTE, base: { title: 'base' } });
    expect(sent.map((r) => [r.ifMatch, r.body && JSON.parse(r.body)])).toEqual([
      ['"v1"', { title: 'mine', body: 'shared' }],
      ['"v2"', { title: 'mine + theirs', body: 'shared' }],
    ]);
    expect(item.state).toBe('done');
    expect(conflict).toMatchObject({ state: 'resolved', resolution: 'document' });
  });

  it('keep: remote drops the local change and records it in the inbox', async () => {
    const { item, conflict, sent } = await run(() => ({ keep: 'remote' }));
    expect(sent).toHaveLength(1);
    expect(item).toMatchObject({ state: 'done' });
    expect(conflict).toMatchObject({ state: 'resolved', resolution: 'keep-remote', local: { title: 'mine' } });
  });

  it('a resolver that answers nothing leaves the conflict open for the app', async () => {
    const { item, conflict, sent } = await run(() => null);
    expect(sent).toHaveLength(1);
    expect(item.state).toBe('conflict');
    expect(conflict).toMatchObject({ state: 'open', custom: true });
  });

  it('a resolver that throws leaves the conflict open; the error is on the decision', async () => {
    const { item, conflict, decisions } = await run(() => {
      throw new Error('resolver bug');
    });
    expect(item.state).toBe('conflict');
    expect(conflict.state).toBe('open');
    expect(decisions.at(-1)).toMatchObject({ state: 'conflict', resolverError: 'resolver bug' });
  });

  it('a resolution the engine refuses leaves the conflict open, nothing lost', async () => {
    const { item, conflict, decisions } = await run(() => ({ keep: 'sideways' }));
    expect(item.state).toBe('conflict');
    expect(conflict).toMatchObject({ state: 'open', local: { title: 'mine' } });
    expect(decisions.at(-1).resolverError).toEqual(expect.any(String));
  });

  it('is never asked about conflicts of other strategies', async () => {
    const { calls, conflict } = await run(() => ({ keep: 'remote' }), { strategy: 'manual' });
    expect(calls).toEqual([]);
    expect(conflict).toMatchObject({ state: 'open', custom: false });
  });
});
