// Conflicts through the WebAssembly module: each strategy, the inbox, the remote and
// resolve calls, entity blocking, bad documents (protocol in core/include/bgsync.h).
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { BgsyncError } from '../../web/BgsyncError.js';

let module;
beforeAll(async () => {
  module = await loadWasm();
});

async function openEngine(conflict, store = new MemoryStore(), clock = { t: 1_000 }) {
  const queue = { name: 'notes', backoff: { jitter: 'none' } };
  if (conflict) queue.conflict = conflict;
  const engine = await Engine.open(module, store, {
    now: () => clock.t,
    seed: 7,
    installId: 'test',
    queues: [queue],
  });
  return { engine, store, clock };
}

const BASE = { title: 'a', body: 'b', tags: [1] };
const LOCAL = { title: 'mine', body: 'b', tags: [1] };
const REMOTE = { title: 'a', body: 'theirs', tags: [1] };
const text = (o) => JSON.stringify(o);
const decode = (bytes) => JSON.parse(new TextDecoder().decode(bytes));

/** Enqueues an edit of note `n` made from version "v1" of BASE. */
function edit(engine, n, doc, extra = {}) {
  return engine.enqueue(
    {
      queue: 'notes',
      method: extra.method ?? 'PUT',
      url: `https://api.test/notes/${n}`,
      entity: `note:${n}`,
      baseVersion: '"v1"',
      baseDocument: BASE,
      ...extra,
    },
    text(doc),
  );
}

/** What the glue does for a 412: the response body is the current document, ETag its version. */
function report412(engine, item, remote, etag = '"v2"') {
  const headers = etag ? { etag } : {};
  return engine.outcome({ id: item.id, attempt: item.attempt, status: 412, headers }, remote == null ? null : text(remote));
}

describe('Engine conflicts', () => {
  it('hands out baseVersion with the claim so the glue can send If-Match', async () => {
    const { engine } = await openEngine();
    await edit(engine, 1, LOCAL);
    const [item] = await engine.claim('notes', 1);
    expect(item.baseVersion).toBe('"v1"');
    await engine.close();
  });

  describe('server-wins', () => {
    it('drops the local change but keeps it visible in the inbox', async () => {
      const { engine } = await openEngine({ strategy: 'server-wins' });
      const { id } = await edit(engine, 1, LOCAL);
      const next = await edit(engine, 1, { title: 'later' });
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, REMOTE);
      expect(decision).toMatchObject({ state: 'done', reason: 'server-wins', conflict: { state: 'resolved' } });
      const [record] = engine.conflicts();
      expect(record).toMatchObject({ itemId: id, resolution: 'server-wins', local: LOCAL, remote: REMOTE });
      expect(decode(engine.body(id))).toEqual(LOCAL);
      const [after] = await engine.claim('notes', 1);
      expect(after.id).toBe(next.id);
      await engine.close();
    });
  });

  describe('client-wins', () => {
    it('re-sends against the new version with a new idempotency key', async () => {
      const { engine } = await openEngine({ strategy: 'client-wins' });
      const { id, key } = await edit(engine, 1, LOCAL);
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, null, '"v2"');
      expect(decision).toMatchObject({ state: 'pending', reason: 'client-wins' });
      const [again] = await engine.claim('notes', 1);
      expect(again).toMatchObject({ id, baseVersion: '"v2"', key: `${key}.r1` });
      expect(decode(engine.body(id))).toEqual(LOCAL);
      expect((await engine.outcome({ id, attempt: again.attempt, status: 200 })).state).toBe('done');
      await engine.close();
    });

    it('asks the glue for the remote when the 412 has no ETag', async () => {
      const { engine } = await openEngine({ strategy: 'client-wins' });
      await edit(engine, 1, LOCAL);
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, null, null);
      expect(decision).toMatchObject({ state: 'conflict', conflict: { needsRemote: true } });
      const record = await engine.conflictRemote(decision.conflict.id, REMOTE, '"v7"');
      expect(record).toMatchObject({ resolution: 'client-wins', itemState: 'pending' });
      const [again] = await engine.claim('notes', 1);
      expect(again.baseVersion).toBe('"v7"');
      await engine.close();
    });
  });

  describe('merge', () => {
    it('re-sends the merged document against the new version', async () => {
      const { engine } = await openEngine({ strategy: 'merge' });
      const { id } = await edit(engine, 1, LOCAL);
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, REMOTE);
      expect(decision).toMatchObject({ state: 'pending', reason: 'merged' });
      const [again] = await engine.claim('notes', 1);
      expect(again).toMatchObject({ id, baseVersion: '"v2"', method: 'PUT' });
      expect(decode(engine.body(id))).toEqual({ title: 'mine', body: 'theirs', tags: [1] });
      await engine.close();
    });

    it('turns a PATCH into a PUT of the merged document', async () => {
      const { engine } = await openEngine({ strategy: 'merge' });
      const { id } = await edit(engine, 1, { title: 'mine' }, { method: 'PATCH' });
      const [item] = await engine.claim('notes', 1);
      await report412(engine, item, REMOTE);
      const [again] = await engine.claim('notes', 1);
      expect(again.method).toBe('PUT');
      expect(decode(engine.body(id))).toEqual({ title: 'mine', body: 'theirs', tags: [1] });
      await engine.close();
    });

    it('decides both-sided changes by the field rules', async () => {
      const { engine } = await openEngine({
        strategy: 'merge',
        fields: { title: 'prefer-local', body: 'newer-wins', tags: 'prefer-remote' },
      });
      const { id } = await edit(engine, 1, { title: 'mine', body: 'mine', tags: [9] }, { editedAt: 1_000 });
      const [item] = await engine.claim('notes', 1);
      await report412(engine, item, { title: 'theirs', body: 'theirs', tags: [2], updatedAt: '2030-01-01T00:00:00Z' });
      expect(decode(engine.body(id))).toEqual({ title: 'mine', body: 'theirs', tags: [2], updatedAt: '2030-01-01T00:00:00Z' });
      await engine.close();
    });

    it('parks an unresolvable field and blocks the entity until the app resolves it', async () => {
      const { engine } = await openEngine({ strategy: 'merge' });
      const { id } = await edit(engine, 1, LOCAL);
      const next = await edit(engine, 1, { title: 'later' });
      const other = await edit(engine, 2, LOCAL);
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, { ...REMOTE, title: 'theirs' });
      expect(decision).toMatchObject({ state: 'conflict', conflict: { reason: 'unresolvable', fields: ['title'] } });
      expect((await engine.claim('notes', 5)).map((i) => i.id)).toEqual([other.id]);
      const [open] = engine.conflicts({ state: 'open' });
      expect(open).toMatchObject({ id: decision.conflict.id, entity: 'note:1', merged: { title: 'theirs', body: 'theirs' } });
      expect(engine.status().counts.conflict).toBe(1);

      const resolved = await engine.conflictResolve(open.id, { document: { ...open.merged, title: 'both' } });
      expect(resolved).toMatchObject({ state: 'resolved', resolution: 'document' });
      const [again] = await engine.claim('notes', 1);
      expect(again).toMatchObject({ id, baseVersion: '"v2"' });
      expect(decode(engine.body(id)).title).toBe('both');
      await engine.outcome({ id, attempt: again.attempt, status: 204 });
      expect((await engine.claim('notes', 1))[0].id).toBe(next.id);
      await expect(engine.conflictResolve(open.id, { keep: 'local' })).rejects.toMatchObject({ code: 'invalid-state' });
      await engine.close();
    });
  });

  describe('manual and custom', () => {
    it('manual: keep remote drops the local change and unblocks the entity', async () => {
      const { engine } = await openEngine({ strategy: 'manual' });
      await edit(engine, 1, LOCAL);
      const next = await edit(engine, 1, { title: 'later' });
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, REMOTE);
      expect(decision).toMatchObject({ state: 'conflict', conflict: { strategy: 'manual', custom: false } });
      expect(await engine.claim('notes', 1)).toEqual([]);
      const record = await engine.conflictResolve(decision.conflict.id, { keep: 'remote' });
      expect(record).toMatchObject({ resolution: 'keep-remote', itemState: 'done' });
      expect((await engine.claim('notes', 1))[0].id).toBe(next.id);
      await engine.close();
    });

    it('custom: parks with custom = true; the resolver answers through conflictResolve', async () => {
      const { engine } = await openEngine({ strategy: 'custom' });
      const { id } = await edit(engine, 1, LOCAL);
      const [item] = await engine.claim('notes', 1);
      const decision = await report412(engine, item, REMOTE);
      expect(decision.conflict).toMatchObject({ custom: true, state: 'open' });
      // What the glue does: call the app's resolver with base/local/remote, hand back the result.
      const [c] = engine.conflicts({ state: 'open' });
      const resolver = ({ local, remote }) => ({ document: { ...remote, title: local.title.toUpperCase() } });
      await engine.conflictResolve(c.id, resolver(c));
      const [again] = await engine.claim('notes', 1);
      expect(again.id).toBe(id);
      expect(decode(engine.body(id))).toEqual({ ...REMOTE, title: 'MINE' });
      await engine.close();
    });

    it('a per-item strategy overrides the queue', async () => {
      const { engine } = await openEngine({ strategy: 'manual' });
      await edit(engine, 1, LOCAL, { conflictStrategy: 'server-wins' });
      const [item] = await engine.claim('notes', 1);
      expect(await report412(engine, item, REMOTE)).toMatchObject({ state: 'done', conflict: { strategy: 'server-wins' } });
      await engine.close();
    });
  });

  describe('bad documents', () => {
    it('rejects a bad base document with invalid-document and stores nothing', async () => {
      const { engine, store } = await openEngine();
      const before = store.writes;
      await expect(edit(engine, 1, LOCAL, { baseDocument: [1, 2] })).rejects.toMatchObject({
        name: 'BgsyncError',
        code: 'invalid-document',
      });
      expect(engine.status().counts.pending).toBe(0);
      expect(store.writes).toBe(before);
      await engine.close();
    });

    it('asks for the remote when the 412 body is unusable, and keeps the item on a bad remote', async () => {
      const { engine } = await openEngine({ strategy: 'merge' });
      await edit(engine, 1, LOCAL);
      const [item] = await engine.claim('notes', 1);
      const decision = await engine.outcome(
        { id: item.id, attempt: item.attempt, status: 412, headers: { etag: '"v2"' } },
        '<html>412</html>',
      );
      expect(decision.conflict.needsRemote).toBe(true);
      let deep = 1;
      for (let i = 0; i < 70; i++) deep = { d: deep };
      const err = await engine.conflictRemote(decision.conflict.id, deep, '"v2"').catch((e) => e);
      expect(err).toBeInstanceOf(BgsyncError);
      expect(err.code).toBe('invalid-document');
      await expect(engine.conflictResolve(decision.conflict.id, { document: 'not an object' })).rejects.toMatchObject({
        code: 'invalid-document',
      });
      expect(engine.status().counts.conflict).toBe(1);
      expect(engine.conflicts({ state: 'open' })).toHaveLength(1);
      const record = await engine.conflictRemote(decision.conflict.id, REMOTE, '"v2"');
      expect(record.resolution).toBe('merged');
      await engine.close();
    });
  });

  it('keeps the inbox across a reopen', async () => {
    const store = new MemoryStore();
    const first = await openEngine({ strategy: 'manual' }, store);
    await edit(first.engine, 1, LOCAL);
    const [item] = await first.engine.claim('notes', 1);
    await report412(first.engine, item, REMOTE);
    await first.engine.close();
    const second = await openEngine({ strategy: 'manual' }, store);
    expect(second.engine.conflicts({ state: 'open' })).toMatchObject([{ remote: REMOTE, local: LOCAL, base: BASE }]);
    await second.engine.close();
  });

  it('exposes the pure merge', async () => {
    const { engine } = await openEngine();
    expect(engine.merge3({ a: 1, b: 1, é: 'x' }, { a: 2, b: 1, é: 'x' }, { a: 1, b: 3, é: 'y' })).toEqual({
      merged: { a: 2, b: 3, é: 'y' },
      conflicts: [],
    });
    expect(engine.merge3({ a: 1 }, { a: 2 }, { a: 3 })).toEqual({ merged: { a: 3 }, conflicts: ['a'] });
    expect(() => engine.merge3({}, 'nope', {})).toThrow(expect.objectContaining({ code: 'invalid-document' }));
    await engine.close();
  });
});
