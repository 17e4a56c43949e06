/**
 * Storage faults in real Chromium that tests/e2e/storage-*.test.js do not cover (they
 * cover worker kills during bursts, a browser restart, quota errors and the hand-over
 * between worker versions):
 *  - a damaged store: a chunk corrupted in IndexedDB from the page (its CRC kept), the
 *    worker restarted: every call rejects with 'storage-corrupt' (never a silently empty
 *    queue); a worker version with onCorrupt: 'quarantine' moves the damaged database aside
 *    intact and starts a fresh one;
 *  - the same on OPFS: a log segment that is not the last one damaged on disk;
 *  - the database deleted under a running worker (a user clearing site data in DevTools,
 *    another tab's cleanup): what the worker acknowledges afterwards must still be there
 *    after a restart.
 */
import { join } from 'node:path';
import { E2eHarness, ROOT } from './support/E2eHarness.js';

let h;
beforeAll(async () => {
  h = await E2eHarness.start({ fixtureDir: join(ROOT, 'tests/e2e/fixtures-faults') });
});
afterAll(async () => {
  await h?.stop();
});
beforeEach(() => h.reset());

const sw = (q) => `/?timeoutMs=15000&sw=${encodeURIComponent(q)}`;

async function session(path, body) {
  const s = await h.open(path);
  try {
    await body(s);
  } catch (err) {
    err.message += `\n--- browser ---\n${s.diagnostics().slice(-3000)}`;
    throw err;
  } finally {
    await s.close();
  }
}

/** Runs fn in the page against the raw IndexedDB database `name`. */
function idb(s, name, fnSrc) {
  return s.page.evaluate(
    async ([dbName, src]) => {
      const db = await new Promise((res, rej) => {
        const r = indexedDB.open(dbName);
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      const req = (r) => new Promise((res, rej) => {
        r.onsuccess = () => res(r.result);
        r.onerror = () => rej(r.error);
      });
      try {
        return await (0, eval)(`(${src})`)(db, req);
      } finally {
        db.close();
      }
    },
    [name, fnSrc.toString()],
  );
}

/** Runs fn in the page against the OPFS directory `name` (a store's files). */
function opfs(s, name, fnSrc) {
  return s.page.evaluate(
    async ([dirName, src]) => {
      const root = await navigator.storage.getDirectory();
      return (0, eval)(`(${src})`)(root, await root.getDirectoryHandle(dirName));
    },
    [name, fnSrc.toString()],
  );
}

describe('Storage faults (Chromium)', () => {
  it('a corrupted chunk: storage-corrupt for every call, then quarantine keeps the damaged copy and starts fresh', async () => {
    await session(sw('version=c1'), async (s) => {
      h.api.faults.set({ status: 503 });
      for (let i = 0; i < 5; i++) await s.call((c, n) => c.enqueue({ url: `/api/notes/${n}`, method: 'PUT', body: { n } }), i);
      await s.stopWorker();
      // Flip a byte in the middle of the last chunk; keep its CRC, as a torn disk write would.
      const damaged = await idb(s, 'bgsync:default', async (db, req) => {
        const tx = db.transaction('chunks', 'readwrite');
        const store = tx.objectStore('chunks');
        const keys = await req(store.getAllKeys());
        const key = keys[keys.length - 1];
        const rec = await req(store.get(key));
        rec.data[2000] ^= 0xff;
        await req(store.put(rec, key));
        await new Promise((res) => {
          tx.oncomplete = res;
        });
        return { key, chunks: keys.length };
      });
      // Stopped again if the browser or the page woke it between the first stop and the
      // damage: it would already hold the intact store in memory (seen under load).
      await s.stopWorker({ ifRunning: true });
      const status = await s.attempt((c) => c.status());
      const enq = await s.attempt((c) => c.enqueue({ url: '/api/notes/x', body: { x: 1 } }));
      console.log(`damaged chunk ${damaged.key} of ${damaged.chunks}: status → ${status.error?.code}, enqueue → ${enq.error?.code}`);
      expect(status.error?.code).toBe('storage-corrupt');
      expect(enq.error?.code).toBe('storage-corrupt');

      // A worker version that quarantines: the damaged database is kept aside, intact.
      await s.page.evaluate((url) => navigator.serviceWorker.register(url, { type: 'module', scope: '/' }), `/sw.js?version=c2&onCorrupt=quarantine`);
      await s.waitForVersion((v) => v.status === 'activated' && v.scriptURL.includes('version=c2'), 'the quarantining worker');
      const fresh = await s.call(async (c) => {
        c._ready = null;
        await c.ready();
        return c.items();
      });
      expect(fresh).toEqual([]);
      const dbs = await s.page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
      const moved = dbs.find((n) => n.startsWith('bgsync:default.corrupt-'));
      expect(moved).toBeDefined();
      // The page is told, not left to find an empty queue: an event, and the status says so.
      const recovery = { code: 'storage-corrupt', movedTo: moved, detail: expect.any(String) };
      expect((await s.call((c) => c.status())).recovery).toMatchObject(recovery);
      await h.waitFor(async () => (await s.events()).some((e) => e.type === 'recovered'), 'the recovered event');
      expect((await s.events()).find((e) => e.type === 'recovered').detail).toMatchObject(recovery);
      const kept = await idb(s, moved, async (db, req) => (await req(db.transaction('chunks').objectStore('chunks').getAllKeys())).length);
      expect(kept).toBe(damaged.chunks);
      // And the fresh store works.
      const ok = await s.call((c) => c.enqueue({ url: '/api/notes/after', body: { after: true } }));
      expect(ok.id).toEqual(expect.any(Number));
    });
  }, 180_000);

  it('a damaged OPFS log segment: storage-corrupt for every call, then quarantine keeps the damaged files and starts fresh', async () => {
    await session(sw('version=o1&storage=opfs'), async (s) => {
      h.api.faults.set({ status: 503 });
      for (let i = 0; i < 5; i++) await s.call((c, n) => c.enqueue({ url: `/api/notes/${n}`, method: 'PUT', body: { n } }), i);
      await s.stopWorker();
      // Flip a byte in a log segment that has others after it: bit rot, not a torn last
      // write (a damaged last segment is taken for an interrupted append, see LogStore.js).
      const damaged = await opfs(s, 'bgsync-default', async (root, dir) => {
        const files = [];
        for await (const name of dir.keys()) files.push(name);
        const segments = files.filter((n) => /^log-\d+-\d+$/.test(n)).sort();
        if (segments.length < 2) return { files: files.length, segments: segments.length };
        const name = segments[Math.floor((segments.length - 1) / 2)];
        const handle = await dir.getFileHandle(name);
        const bytes = new Uint8Array(await (await handle.getFile()).arrayBuffer());
        bytes[Math.floor(bytes.length / 2)] ^= 0xff;
        const w = await handle.createWritable();
        await w.write(bytes);
        await w.close();
        return { name, files: files.length, segments: segments.length };
      });
      expect(damaged.segments).toBeGreaterThanOrEqual(2);
      // Stopped again: a worker the browser or the page woke between the first stop and
      // the damage would already hold the intact store in memory (seen under load).
      await s.stopWorker();
      const status = await s.attempt((c) => c.status());
      const enq = await s.attempt((c) => c.enqueue({ url: '/api/notes/x', body: { x: 1 } }));
      console.log(`damaged ${damaged.name} (${damaged.segments} segments): status → ${status.error?.code}, enqueue → ${enq.error?.code}`);
      expect(status.error?.code).toBe('storage-corrupt');
      expect(enq.error?.code).toBe('storage-corrupt');

      await s.page.evaluate((url) => navigator.serviceWorker.register(url, { type: 'module', scope: '/' }), `/sw.js?version=o2&storage=opfs&onCorrupt=quarantine`);
      await s.waitForVersion((v) => v.status === 'activated' && v.scriptURL.includes('version=o2'), 'the quarantining worker');
      const fresh = await s.call(async (c) => {
        c._ready = null;
        await c.ready();
        return c.items();
      });
      expect(fresh).toEqual([]);
      // The damaged files moved, unchanged in number, to bgsync-default.corrupt-<time>.
      const kept = await s.page.evaluate(async () => {
        const root = await navigator.storage.getDirectory();
        const out = {};
        for await (const [name, handle] of root.entries()) {
          if (!name.startsWith('bgsync-default.corrupt-')) continue;
          out[name] = [];
          for await (const file of handle.keys()) out[name].push(file);
        }
        return out;
      });
      const moved = Object.values(kept);
      expect(moved).toHaveLength(1);
      expect(moved[0]).toHaveLength(damaged.files);
      expect(moved[0]).toContain(damaged.name);
      const ok = await s.call((c) => c.enqueue({ url: '/api/notes/after', body: { after: true } }));
      expect(ok.id).toEqual(expect.any(Number));
    });
  }, 180_000);

  // Found here: sw/storage/IndexedDbStore.js used to reopen a deleted database as a new,
  // empty one (onupgradeneeded) and the engine went on writing only its changed chunks into
  // it, so what it acknowledged afterwards sat in a store that could not load ('chunk 0 of
  // N is missing'; seen in 1 of 6 runs). The store now remembers that it held data
  // (`known`) and refuses to recreate the database outside load(): the next flush fails
  // with 'storage-failed', the engine reloads the (empty) store, and later calls are
  // durable. Which flush meets the deletion first (an enqueue's, or a 503 replay's) is a
  // race; the guarantee below holds either way (5 of 5 strict runs passed).
  it('the database deleted under a running worker: what is acknowledged afterwards survives a restart', async () => {
    await session(sw('version=d1'), async (s) => {
      h.api.faults.set({ status: 503 });
      for (let i = 0; i < 3; i++) await s.call((c, n) => c.enqueue({ url: `/api/notes/${n}`, method: 'PUT', body: { n } }), i);
      const deleted = await s.page.evaluate(
        () =>
          new Promise((res) => {
            const r = indexedDB.deleteDatabase('bgsync:default');
            r.onsuccess = () => res('deleted');
            r.onerror = () => res(`error ${r.error?.name}`);
            r.onblocked = () => res('blocked');
          }),
      );
      expect(deleted).toBe('deleted'); // the worker's connection let go (onversionchange)
      const after = [];
      for (let i = 3; i < 6; i++) {
        const r = await s.attempt((c, n) => c.enqueue({ url: `/api/notes/${n}`, method: 'PUT', body: { n } }), i);
        if (r.value) after.push(r.value.key);
      }
      await s.stopWorker();
      const listed = await s.attempt((c) => c.items());
      console.log(
        `database deleted (${deleted}); ${after.length} enqueues acknowledged afterwards; after a restart: ` +
          (listed.error ? `items → ${listed.error.code}` : `${listed.value.length} items (${listed.value.map((i) => i.key).join(', ')})`),
      );
      expect(listed.error).toBeUndefined();
      expect(after.length).toBeGreaterThanOrEqual(2); // at most the first call after the deletion is refused
      const keys = new Set(listed.value.map((i) => i.key));
      expect(after.filter((k) => !keys.has(k))).toEqual([]);
    });
  }, 180_000);
});
