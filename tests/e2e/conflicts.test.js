// Conflicts through the worker glue: an edit made from an old version goes out with
// If-Match; the server's 412 (current document + ETag) parks it in the conflicts inbox,
// the pages hear `conflict`, and the app's resolution is sent against the new version.
import { E2eHarness } from './support/E2eHarness.js';

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});

describe('conflicts', () => {
  it('parks a stale edit (412) for the app, then re-sends it against the new version when resolved', async () => {
    h.reset();
    const put = (doc, headers = {}) =>
      fetch(`${h.url}/api/notes/n1`, { method: 'PUT', headers, body: JSON.stringify(doc) });
    expect((await put({ text: 'v1' })).status).toBe(201);
    const s = await h.open('/');
    try {
      // Someone else edits the note after this device read version "v1".
      expect((await put({ text: 'remote edit' })).status).toBe(200);
      const item = await s.call((c) =>
        c.enqueue({ url: '/api/notes/n1', method: 'PUT', body: { text: 'local edit' }, entity: 'note:n1', baseVersion: '"v1"' }),
      );
      const event = await h.waitFor(async () => (await s.events()).find((e) => e.type === 'conflict'), 'a conflict event');
      expect(event.detail).toMatchObject({ id: item.id, status: 412 });
      const first = h.requests.find((r) => r.headers['idempotency-key'] === item.key);
      expect(first.headers['if-match']).toBe('"v1"');

      const [conflict] = await s.call((c) => c.conflicts());
      expect(conflict).toMatchObject({ itemId: item.id, state: 'open', remoteVersion: '"v2"', remote: expect.objectContaining({ text: 'remote edit' }) });
      expect((await s.status('default')).counts.conflict).toBe(1);

      await s.call((c, id) => c.resolveConflict(id, { keep: 'local' }), conflict.id);
      const fromQueue = () => h.log().filter((e) => e.key !== null); // the direct PUTs above carry no key
      await h.waitFor(() => fromQueue().some((e) => e.applied), 'the re-sent edit to be applied');
      expect(fromQueue().map((e) => e.status)).toEqual([412, 200]);
      const [after] = await s.call((c) => c.conflicts());
      expect(after).toMatchObject({ state: 'resolved', resolution: 'keep-local' });
      const resent = h.requests.at(-1);
      expect(resent.headers['if-match']).toBe('"v2"');
      expect(resent.headers['idempotency-key']).not.toBe(item.key); // a new request: "<key>.r1"
      const doc = await (await fetch(`${h.url}/api/notes/n1`)).json();
      expect(doc.text).toBe('local edit');
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });

  it('merges a stale edit with the remote one (strategy merge, baseDocument from the page)', async () => {
    h.reset();
    const put = (doc) => fetch(`${h.url}/api/notes/m1`, { method: 'PUT', body: JSON.stringify(doc) });
    expect((await put({ title: 'T', body: 'B' })).status).toBe(201);
    const s = await h.open('/');
    try {
      const base = await (await fetch(`${h.url}/api/notes/m1`)).json();
      expect((await put({ ...base, title: 'remote title' })).status).toBe(200); // another device: the title
      const item = await s.call(
        (c, base) =>
          c.enqueue({
            url: '/api/notes/m1',
            method: 'PUT',
            body: { ...base, body: 'local body' }, // this device: the body
            entity: 'note:m1',
            baseVersion: '"v1"',
            baseDocument: base,
            conflictStrategy: 'merge',
          }),
        base,
      );
      await h.waitFor(() => h.log().some((e) => e.key !== null && e.applied), 'the merged document to be applied');
      const doc = await (await fetch(`${h.url}/api/notes/m1`)).json();
      expect(doc).toMatchObject({ title: 'remote title', body: 'local body' });
      const [conflict] = await s.call((c) => c.conflicts());
      expect(conflict).toMatchObject({ itemId: item.id, state: 'resolved', resolution: 'merged' });
    } catch (err) {
      err.message += `\n--- browser ---\n${s.diagnostics()}`;
      throw err;
    } finally {
      await s.close();
    }
  });

  it('an open conflict is found by a page opened later: another tab, and a page reloaded after the worker was stopped', async () => {
    h.reset();
    const put = (doc) => fetch(`${h.url}/api/notes/u1`, { method: 'PUT', body: JSON.stringify(doc) });
    expect((await put({ title: 'T', body: 'B' })).status).toBe(201);
    const s = await h.open('/');
    try {
      const base = await (await fetch(`${h.url}/api/notes/u1`)).json();
      expect((await put({ ...base, title: 'remote title' })).status).toBe(200); // another device
      // This device changes the same field: the merge cannot decide it, the conflict stays open.
      const item = await s.call(
        (c, base) =>
          c.enqueue({
            url: '/api/notes/u1',
            method: 'PUT',
            body: { ...base, title: 'local title' },
            entity: 'note:u1',
            baseVersion: '"v1"',
            baseDocument: base,
            conflictStrategy: 'merge',
          }),
        base,
      );
      await h.waitFor(async () => (await s.events()).some((e) => e.type === 'conflict' && e.detail.id === item.id), 'a conflict event');
      const open = {
        itemId: item.id,
        state: 'open',
        strategy: 'merge',
        reason: 'unresolvable',
        fields: ['title'],
        base: { ...base, title: 'T' },
        local: { ...base, title: 'local title' },
        remote: expect.objectContaining({ title: 'remote title', body: 'B' }),
        baseVersion: '"v1"',
        remoteVersion: '"v2"',
      };

      // A second tab of the same app (same worker) lists it.
      const tab = await s.openTab('/');
      expect(await s.call((c) => c.conflicts(), undefined, { page: tab })).toEqual([expect.objectContaining(open)]);
      await tab.close();

      // The worker is stopped (the browser does that to idle workers) and the page reloaded:
      // the new worker reads the inbox back from storage.
      await s.stopWorker();
      await s.reload();
      const [found] = await s.call((c) => c.conflicts());
      expect(found).toMatchObject(open);
      expect((await s.status('default')).counts.conflict).toBe(1);

      // And the late page can settle it: its document goes out against the remote version.
      await s.call((c, { id, doc }) => c.resolveConflict(id, { document: doc }), { id: found.id, doc: { ...found.merged, title: 'both titles' } });
      await h.waitFor(() => h.log().some((e) => e.key !== null && e.applied), 'the resolved document to be applied');
      const queued = h.requests.filter((r) => r.headers['idempotency-key']); // the direct PUTs carry no key
      expect(queued.map((r) => r.headers['if-match'])).toEqual(['"v1"', '"v2"']);
      expect((await (await fetch(`${h.url}/api/notes/u1`)).json()).title).toBe('both titles');
    } catch (err) {
      throw s.annotate(err);
    } finally {
      await s.close();
    }
  });
});
