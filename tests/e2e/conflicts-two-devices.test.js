// Two devices edit the same note while the API is unreachable, then both sync: for each
// conflict strategy, the server and the second device's conflicts inbox end as the
// strategy says, and no change disappears without being applied or listed in the inbox.
// Each device is its own browser context: its own service worker, its own bgsync store.
import { E2eHarness } from './support/E2eHarness.js';

let h;
beforeAll(async () => {
  h = await E2eHarness.start();
});
afterAll(async () => {
  await h?.stop();
});

// Short backoff, so an item that failed while offline is due again within the test.
const PAGE = `/?sw=${encodeURIComponent('initialMs=200')}`;

const note = (id) => `/api/notes/${id}`;
const serverDoc = async (id) => (await fetch(`${h.url}${note(id)}`)).json();
// The reference API adds id and updatedAt; the edits are about these fields.
const fields = (doc) => Object.fromEntries(['title', 'body', 'resolvedBy'].filter((k) => k in (doc ?? {})).map((k) => [k, doc[k]]));
// Offline failures left the items backing off (and each run retries a few times): move
// the device's engine clock an hour on before asking it to sync, instead of waiting.
const offsets = new WeakMap();
async function syncDue(s) {
  const offsetMs = (offsets.get(s) ?? 0) + 3_600_000;
  offsets.set(s, offsetMs);
  await s.call((c, offsetMs) => c._request('testClock', { offsetMs }), offsetMs);
  await s.call((c) => c.syncNow());
}
const queuedApplied = () => h.api.appliedKeys().filter((k) => k !== null); // the direct PUTs carry no key

/** What the server and device B's inbox must hold, per strategy (A's edit lands first). */
const EXPECTED = {
  'server-wins': { server: { title: 'A title', body: 'body 0' }, inbox: { state: 'resolved', resolution: 'server-wins' } },
  'client-wins': { server: { title: 'title 0', body: 'B body' }, inbox: { state: 'resolved', resolution: 'client-wins' } },
  merge: { server: { title: 'A title', body: 'B body' }, inbox: { state: 'resolved', resolution: 'merged' } },
  manual: { server: { title: 'A title', body: 'body 0' }, inbox: { state: 'open', resolution: null } },
  custom: { server: { title: 'title 0', body: 'B body', resolvedBy: 'custom' }, inbox: { state: 'resolved', resolution: 'document' } },
};

describe('conflicts between two devices', () => {
  for (const [strategy, expected] of Object.entries(EXPECTED)) {
    it(`${strategy}: the server and the inbox end as the strategy says, nothing silently lost`, async () => {
      h.reset();
      const id = `two-${strategy}`;
      expect((await fetch(`${h.url}${note(id)}`, { method: 'PUT', body: JSON.stringify({ title: 'title 0', body: 'body 0' }) })).status).toBe(201);
      const base = await serverDoc(id);
      const a = await h.open(PAGE);
      const b = await h.open(PAGE);
      try {
        // Both devices read version "v1"; then the network goes.
        h.api.faults.set({ down: true });
        const edit = (doc) => (c, { doc, base, id, strategy }) =>
          c.enqueue({ url: `/api/notes/${id}`, method: 'PUT', body: doc, entity: `note:${id}`, baseVersion: '"v1"', baseDocument: base, conflictStrategy: strategy });
        const docA = { ...base, title: 'A title' };
        const docB = { ...base, body: 'B body' };
        const itemA = await a.call(edit(docA), { doc: docA, base, id, strategy });
        const itemB = await b.call(edit(docB), { doc: docB, base, id, strategy });
        // Each tried while the API was unreachable (Chromium fires sync right after register),
        // and its run is over: nothing goes out again until the test asks, so A lands first.
        for (const [s, item] of [[a, itemA], [b, itemB]]) {
          await h.waitFor(async () => {
            const it = (await s.call((c) => c.items())).find((i) => i.id === item.id);
            return it?.attempts >= 1 && it.state === 'waiting' && (await s.status()).state !== 'running';
          }, 'a failed attempt while offline, and the run over');
        }
        expect(queuedApplied()).toEqual([]);

        // The network is back: A syncs first, then B meets A's version.
        h.api.faults.set({ down: false });
        await h.waitFor(async () => {
          await syncDue(a);
          return queuedApplied().includes(itemA.key);
        }, "A's edit applied").catch(async (err) => {
          const items = await a.call((c) => c.items()).catch((e) => String(e));
          const status = await a.status().catch((e) => String(e));
          err.message += `\nA items ${JSON.stringify(items)}\nA status ${JSON.stringify(status)}\nlog ${JSON.stringify(h.log().slice(-6))}`;
          throw err;
        });
        await h.waitFor(async () => {
          await syncDue(b);
          const [conflict] = await b.call((c) => c.conflicts());
          return conflict && conflict.state === expected.inbox.state && (await b.status()).state !== 'running';
        }, `B's conflict ${expected.inbox.state}`);
        if (expected.inbox.state === 'resolved' && strategy !== 'server-wins') {
          await h.waitFor(async () => {
            await syncDue(b);
            return (await b.call((c) => c.items())).find((i) => i.id === itemB.id)?.state === 'done';
          }, "B's re-sent change delivered");
        }

        const doc = await serverDoc(id);
        expect(fields(doc)).toEqual(expected.server);
        const [conflict] = await b.call((c) => c.conflicts());
        expect(conflict).toMatchObject({ itemId: itemB.id, status: 412, strategy, ...expected.inbox });
        expect(conflict.local).toEqual(docB);
        expect(fields(conflict.remote)).toEqual(fields(docA)); // A's version, as the 412 carried it
        // A's change was applied; B's is either on the server or listed in B's inbox.
        expect(queuedApplied()[0]).toBe(itemA.key);
        const bApplied = doc.body === 'B body';
        expect(bApplied || conflict.local.body === 'B body').toBe(true);
        if (strategy === 'server-wins' || strategy === 'manual') expect(bApplied).toBe(false);
        expect(await a.call((c) => c.conflicts())).toEqual([]);
      } catch (err) {
        a.annotate(err);
        b.annotate(err);
        throw err;
      } finally {
        await a.close();
        await b.close();
      }
    });
  }

  it("custom: a resolver that answers nothing leaves the conflict in the inbox for the app", async () => {
    h.reset();
    const id = 'two-custom-parked';
    expect((await fetch(`${h.url}${note(id)}`, { method: 'PUT', body: JSON.stringify({ title: 't' }) })).status).toBe(201);
    expect((await fetch(`${h.url}${note(id)}`, { method: 'PUT', body: JSON.stringify({ title: 'remote' }) })).status).toBe(200);
    const s = await h.open(PAGE);
    try {
      const item = await s.call((c, id) =>
        c.enqueue({ url: `/api/notes/${id}`, method: 'PUT', body: { title: 'mine', leaveParked: true }, entity: `note:${id}`, baseVersion: '"v1"', conflictStrategy: 'custom' }), id);
      await h.waitFor(async () => (await s.call((c) => c.conflicts()))[0]?.state === 'open', 'an open conflict');
      const [conflict] = await s.call((c) => c.conflicts());
      expect(conflict).toMatchObject({ itemId: item.id, strategy: 'custom', custom: true, state: 'open' });
      expect((await serverDoc(id)).title).toBe('remote');
      // The app resolves it by hand, as with manual.
      await s.call((c, cid) => c.resolveConflict(cid, { keep: 'local' }), conflict.id);
      await h.waitFor(async () => {
        await s.call((c) => c.syncNow());
        return (await serverDoc(id)).title === 'mine';
      }, 'the local change applied after the manual resolution');
    } catch (err) {
      s.annotate(err);
      throw err;
    } finally {
      await s.close();
    }
  });
});
