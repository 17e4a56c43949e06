/**
 * IndexedDbStore's two shapes (sw/storage/IndexedDbStore.js): flushes write small loose
 * chunks, compactions fold them into 64 KiB segments so that a cold start reads a few
 * large records. Judged against fake-indexeddb; the real IndexedDB runs in Chromium
 * (tests/e2e/storage-*.test.js) and the load time in the benchmark.
 */
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { IndexedDbStore, SEGMENT_CHUNKS } from '../../sw/storage/IndexedDbStore.js';
import { fakeIdb } from './support/fakeIndexedDb.js';


let module;
beforeAll(async () => {
  module = await loadWasm();
});

const post = (path) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}` });
const openEngine = (store) =>
  Engine.open(module, store, { now: () => 1_000, seed: 7, installId: 'seg', queues: [{ name: 'outbox', backoff: { jitter: 'none' } }] });

/** Every record of one object store: [[key, value]]. */
async function records(factory, storeName, dbName = 'bgsync:t') {
  const db = await new Promise((resolve, reject) => {
    const req = factory.open(dbName);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const out = await new Promise((resolve, reject) => {
    const tx = db.transaction(storeName, 'readonly');
    const os = tx.objectStore(storeName);
    let keys;
    os.getAllKeys().onsuccess = (e) => {
      keys = e.target.result;
    };
    os.getAll().onsuccess = (e) => resolve(keys.map((k, i) => [k, e.target.result[i]]));
    tx.onerror = () => reject(tx.error);
  });
  db.close();
  return out;
}

/** A changes object as the binding's takeChanges gives it: chunks filled with `fill`. */
function changes(size, indexes, fill) {
  return {
    chunkSize: 4096,
    size: size * 4096,
    chunks: indexes.map((index) => ({ index, data: new Uint8Array(4096).fill(fill + index), crc: fill * 1000 + index })),
  };
}

const byIndex = (stored) => new Map(stored.chunks.map((c) => [c.index, c]));

(fakeIdb ? describe : describe.skip)('IndexedDbStore segments', () => {
  it('folds loose chunks into segments, and a reopened engine finds every item', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 8 });
    const engine = await openEngine(store);
    const keys = [];
    for (let i = 0; i < 300; i++) keys.push((await engine.enqueue(post(`n${i}`), `{"i":${i},"pad":"${'x'.repeat(200)}"}`)).key);
    await store.compacting;
    await engine.close();
    expect(store.stats.compactions).toBeGreaterThan(5);
    expect(store.stats.failedCompactions).toBe(0);
    const segments = await records(factory, 'segments');
    const loose = await records(factory, 'chunks');
    expect(segments.length).toBeGreaterThan(0);
    expect(loose.length).toBeLessThan(8 + 8); // at most one flush past the threshold
    const reopened = await openEngine(new IndexedDbStore({ name: 't', indexedDB: factory }));
    expect(reopened.items({ limit: 1000 }).map((i) => i.key)).toEqual(keys);
    await reopened.close();
  });

  it("keeps the head start's tickets with the write that made them; load hands them over first", async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 4 });
    const engine = await Engine.open(module, store, {
      now: () => 1_000, seed: 7, installId: 'seg', headStartQueues: ['outbox'], queues: [{ name: 'outbox', backoff: { jitter: 'none' } }],
    });
    const first = await engine.enqueue(post('a'), '{"n":1}');
    for (let i = 0; i < 6; i++) await engine.enqueue(post(`b${i}`), '{}'); // a compaction runs meanwhile
    await engine.settle();
    const tickets = await store.readAhead();
    expect(tickets.tickets.outbox.item).toMatchObject({ id: first.id, key: first.key, url: 'https://api.test/a' });
    expect(new TextDecoder().decode(tickets.tickets.outbox.body)).toBe('{"n":1}');
    // The load's first answer is the tickets: an engine is not needed to read them.
    const order = [];
    const again = new IndexedDbStore({ name: 't', indexedDB: factory });
    const loading = again.load({ onAhead: (t) => order.push(['ahead', t.tickets.outbox.item.id]) }).then(() => order.push(['chunks']));
    await loading;
    expect(order).toEqual([['ahead', first.id], ['chunks']]);
    // Claimed, the head is another item; all claimed, none is left (the record goes).
    await engine.claim('outbox', 1);
    await engine.settle();
    expect((await store.readAhead()).tickets.outbox.item.url).toBe('https://api.test/b0');
    await engine.claim('outbox', 10);
    await engine.settle();
    expect(await store.readAhead()).toBeNull();
    await engine.close();
  });

  it('loads exactly what was written, loose chunks over their segment slots', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 1000 });
    await store.load();
    await store.write(changes(40, [...Array(40).keys()], 1));
    expect(await store.compact()).toBe(40);
    await store.write(changes(40, [3, 17, 39], 2)); // newer bytes for three chunks, loose
    const loaded = byIndex(await store.load());
    expect(loaded.size).toBe(40);
    for (const [index, c] of loaded) {
      const fill = [3, 17, 39].includes(index) ? 2 : 1;
      expect(c.crc).toBe(fill * 1000 + index);
      expect(c.data.length).toBe(4096);
      expect(c.data[4095]).toBe((fill + index) & 0xff);
    }
    expect((await records(factory, 'segments')).map(([k]) => k)).toEqual([0, 1, 2]);
  });

  it('never brings old segment bytes back when a file shrinks and grows again', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 1000 });
    await store.load();
    await store.write(changes(40, [...Array(40).keys()], 1));
    await store.compact();
    await store.write(changes(20, [], 0)); // shrinks to 20 chunks: segments 2 and up go, 1 is cut
    const segs = await records(factory, 'segments');
    expect(segs.map(([k, v]) => [k, v.crcs.length])).toEqual([[0, SEGMENT_CHUNKS], [1, 20 - SEGMENT_CHUNKS]]);
    await store.write(changes(40, [39], 3)); // grows back, writing only its last chunk
    const loaded = byIndex(await store.load());
    expect([...loaded.keys()].filter((i) => i >= 20)).toEqual([39]); // 20..38 are missing, not old
    expect(loaded.get(39).crc).toBe(3039);
    // And a reopened store (which has not seen the shrink) trims the same way.
    const again = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 1000 });
    await again.write(changes(10, [], 0));
    expect((await records(factory, 'segments')).map(([k, v]) => [k, v.crcs.length])).toEqual([[0, 10]]);
  });

  it('a compaction that aborts leaves the store as it was, and a later one succeeds', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 1000 });
    await store.load();
    await store.write(changes(24, [...Array(24).keys()], 1));
    const before = await store.load();
    const proto = fakeIdb.IDBObjectStore.prototype;
    const put = proto.put;
    proto.put = function patched(...args) {
      const req = put.apply(this, args);
      if (this.name === 'segments') this.transaction.abort(); // as a quota error would
      return req;
    };
    try {
      await expect(store.compact()).rejects.toBeDefined();
    } finally {
      proto.put = put;
    }
    expect(await store.load()).toEqual(before);
    expect(await records(factory, 'segments')).toEqual([]);
    expect(await store.compact()).toBe(24);
    const after = await store.load();
    expect(byIndex(after)).toEqual(byIndex(before));
  });

  it('a write past the threshold starts a compaction on its own; a failed one is counted, not thrown', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 10 });
    await store.load();
    await store.write(changes(12, [...Array(12).keys()], 1));
    expect(store.compacting).not.toBeNull();
    await store.compacting;
    expect(store.stats.compactions).toBe(1);
    expect((await records(factory, 'chunks')).length).toBe(0);
    store.compact = async () => {
      throw new DOMException('quota', 'QuotaExceededError');
    };
    await store.write(changes(12, [...Array(12).keys()], 2));
    await store.compacting;
    expect(store.stats.failedCompactions).toBe(1);
    expect(byIndex(await store.load()).get(11).crc).toBe(2011);
  });

  it('opens a store written in the version-1 layout (loose chunks only) and keeps its items', async () => {
    const factory = new fakeIdb.IDBFactory();
    // Made by today's store, then rewritten as the first layout had it: database version 1,
    // object stores `chunks` and `meta` only.
    const source = new IndexedDbStore({ name: 'src', indexedDB: factory, looseLimit: 1_000_000 });
    const engine = await openEngine(source);
    const keys = [];
    for (let i = 0; i < 20; i++) keys.push((await engine.enqueue(post(`v1-${i}`))).key);
    await engine.close();
    const stored = await new IndexedDbStore({ name: 'src', indexedDB: factory }).load();
    await new Promise((resolve, reject) => {
      const req = factory.open('bgsync:t', 1);
      req.onupgradeneeded = () => {
        req.result.createObjectStore('chunks');
        req.result.createObjectStore('meta');
      };
      req.onsuccess = () => {
        const db = req.result;
        const tx = db.transaction(['chunks', 'meta'], 'readwrite');
        for (const c of stored.chunks) tx.objectStore('chunks').put({ data: c.data.slice(), crc: c.crc }, c.index);
        tx.objectStore('meta').put(stored.size, 'size');
        tx.oncomplete = () => {
          db.close();
          resolve();
        };
        tx.onabort = () => reject(tx.error);
      };
      req.onerror = () => reject(req.error);
    });
    const reopened = await openEngine(new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 4 }));
    expect(reopened.items().map((i) => i.key)).toEqual(keys);
    await reopened.enqueue(post('after-upgrade'));
    await reopened.close();
    const again = await openEngine(new IndexedDbStore({ name: 't', indexedDB: factory }));
    expect(again.items().length).toBe(21);
    await again.close();
  });

  it('a flipped byte inside a segment is caught by its chunk checksum: the engine does not open', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 1_000_000 });
    const engine = await openEngine(store);
    for (let i = 0; i < 30; i++) await engine.enqueue(post(`d${i}`));
    await engine.close();
    expect(await store.compact()).toBeGreaterThan(0);
    expect(await records(factory, 'chunks')).toEqual([]);
    const db = await store._open();
    await new Promise((resolve) => {
      const tx = db.transaction('segments', 'readwrite');
      const os = tx.objectStore('segments');
      os.get(0).onsuccess = (e) => {
        const seg = e.target.result;
        seg.data[4096 + 100] ^= 0x40; // chunk 1, its crc kept: a torn or rotted write
        os.put(seg, 0);
      };
      tx.oncomplete = resolve;
    });
    store.close();
    const err = await openEngine(new IndexedDbStore({ name: 't', indexedDB: factory })).catch((e) => e);
    expect(err).toMatchObject({ code: 'storage-corrupt' });
    expect(String(err.message)).not.toMatch(/missing|past the end|appears twice/); // the checksum, not the layout
  });

  it('a segment record of the wrong shape is storage-corrupt, never a silently short queue', async () => {
    const factory = new fakeIdb.IDBFactory();
    const store = new IndexedDbStore({ name: 't', indexedDB: factory, looseLimit: 1000 });
    await store.load();
    await store.write(changes(20, [...Array(20).keys()], 1));
    await store.compact();
    const db = await store._open();
    await new Promise((resolve) => {
      const tx = db.transaction('segments', 'readwrite');
      tx.objectStore('segments').put({ data: new Uint8Array(100), crcs: [1] }, 1);
      tx.oncomplete = resolve;
    });
    await expect(store.load()).rejects.toMatchObject({ code: 'storage-corrupt' });
  });
});
