/**
 * A 409/412 that carries no current document: the engine parks the conflict with
 * needsRemote, the Replayer GETs the resource (sw/Replayer.js _fetchRemote) and hands the
 * body and its ETag to the engine (conflictRemote), and the strategy runs on what was
 * fetched. The real engine; fetch is a function that answers like a server whose
 * conflict responses have an empty body.
 */
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { Replayer } from '../../sw/Replayer.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

const URL_ = 'https://app.test/api/notes/1';

// What this device edited from, what it sent, and what the GET finds on the server.
// Each field exercises one case of the merge: changed locally only (title), remotely only
// (body), deleted locally (draft), added remotely (pinned), nested (meta.color local,
// meta.size remote), an array changed remotely (tags: atomic, taken whole).
const BASE = { title: 'base', body: 'b0', draft: true, meta: { color: 'red', size: 1 }, tags: ['a'] };
const LOCAL = { title: 'mine', body: 'b0', meta: { color: 'blue', size: 1 }, tags: ['a'] };
const FETCHED = { title: 'base', body: 'theirs', draft: true, pinned: true, meta: { color: 'red', size: 2 }, tags: ['a', 'b'] };
const MERGED = { title: 'mine', body: 'theirs', pinned: true, meta: { color: 'blue', size: 2 }, tags: ['a', 'b'] };

const GET_ETAG = '"v7"';

/**
 * The server: a write whose If-Match is not `current` gets `conflictStatus` with an
 * empty body (and `conflictEtag`, if any); the GET answers the current document with
 * GET_ETAG; a write against `current` succeeds.
 */
function server({ conflictStatus, conflictEtag, current = GET_ETAG }) {
  const sent = [];
  const fetch = async (url, init) => {
    const headers = Object.fromEntries(new Headers(init.headers).entries());
    const body = init.body ? new TextDecoder().decode(new Uint8Array(await new Response(init.body).arrayBuffer())) : null;
    sent.push({ url, method: init.method, ifMatch: headers['if-match'] ?? null, key: headers['idempotency-key'] ?? null, accept: headers.accept ?? null, body });
    if (init.method === 'GET') {
      return new Response(JSON.stringify(FETCHED), { status: 200, headers: { etag: GET_ETAG, 'content-type': 'application/json' } });
    }
    if (headers['if-match'] !== current) {
      return new Response(null, { status: conflictStatus, headers: conflictEtag ? { etag: conflictEtag } : {} });
    }
    return new Response('{}', { status: 200, headers: { etag: '"v8"' } });
  };
  return { sent, fetch };
}

async function run(strategy, serverOptions) {
  const engine = await Engine.open(module, new MemoryStore(), {
    now: () => 1_000_000,
    seed: 1,
    installId: 'fr',
    queues: [{ name: 'q', backoff: { jitter: 'none', initialMs: 0 }, conflict: { strategy } }],
  });
  const { id, key } = await engine.enqueue(
    { queue: 'q', method: 'PUT', url: URL_, entity: 'note:1', baseVersion: '"v1"', baseDocument: BASE },
    JSON.stringify(LOCAL),
  );
  const { sent, fetch } = server(serverOptions);
  const decisions = [];
  const replayer = new Replayer({ engine, fetch, concurrency: 1, requestTimeoutMs: 5_000, onOutcome: (item, d) => decisions.push(d) });
  await replayer.run('q', { deadlineMs: Infinity });
  const item = engine.items({ limit: 10 }).find((i) => i.id === id);
  const conflicts = engine.conflicts({});
  await engine.close();
  const parse = (r) => ({ ...r, body: r.body && JSON.parse(r.body) });
  return { key, item, conflicts, sent: sent.map(parse), decisions };
}

describe('a conflict answer without a document: the Replayer fetches the current one', () => {
  it.each([
    [412, '"v2"'], // an ETag, but no body: the document is still unknown
    [409, null], // neither
  ])("merge, %i with an empty body (ETag %s): merges base/local/fetched and re-sends against the GET's ETag", async (conflictStatus, conflictEtag) => {
    const { key, item, conflicts, sent } = await run('merge', { conflictStatus, conflictEtag });

    expect(sent.map((r) => [r.method, r.ifMatch])).toEqual([
      ['PUT', '"v1"'],
      ['GET', null], // not conditional: a stale If-Match would only fail again
      ['PUT', GET_ETAG],
    ]);
    expect(sent[1]).toMatchObject({ url: URL_, accept: 'application/json', body: null, key: null });
    expect(sent[0].body).toEqual(LOCAL);
    expect(sent[2].body).toEqual(MERGED);
    expect(sent[2].key).not.toBe(key); // a re-send is a new request

    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({
      status: conflictStatus,
      strategy: 'merge',
      state: 'resolved',
      resolution: 'merged',
      needsRemote: false,
      remoteDeleted: false,
      base: BASE,
      local: LOCAL,
      remote: FETCHED,
      remoteVersion: GET_ETAG,
      fields: [],
      merged: MERGED,
    });
    expect(item.state).toBe('done');
  });

  it("client-wins, 412 with neither body nor ETag: re-sends the local document with If-Match = the GET's ETag", async () => {
    const { key, item, conflicts, sent } = await run('client-wins', { conflictStatus: 412, conflictEtag: null });

    expect(sent.map((r) => [r.method, r.ifMatch])).toEqual([
      ['PUT', '"v1"'],
      ['GET', null],
      ['PUT', GET_ETAG],
    ]);
    expect(sent[2].body).toEqual(LOCAL); // the local change, unchanged
    expect(sent[2].key).not.toBe(key);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ strategy: 'client-wins', state: 'resolved', resolution: 'client-wins', remote: FETCHED, remoteVersion: GET_ETAG });
    expect(item.state).toBe('done');
  });

  it('client-wins, 412 with an ETag but no body: the ETag is enough, nothing is fetched', async () => {
    const { item, conflicts, sent } = await run('client-wins', { conflictStatus: 412, conflictEtag: '"v2"', current: '"v2"' });
    expect(sent.map((r) => [r.method, r.ifMatch])).toEqual([
      ['PUT', '"v1"'],
      ['PUT', '"v2"'],
    ]);
    expect(conflicts[0]).toMatchObject({ strategy: 'client-wins', resolution: 'client-wins', remote: null, remoteVersion: '"v2"' });
    expect(item.state).toBe('done');
  });
});
