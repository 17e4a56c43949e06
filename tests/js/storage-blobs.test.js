/**
 * Large bodies outside the database (BlobStore + bodyRef), over every blob backend that
 * runs in Node: memory, file, OPFS (fake) and IndexedDB (fake-indexeddb when installed).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { OpfsStore } from '../../sw/storage/OpfsStore.js';
import { openBlobStore } from '../../sw/BlobStore.js';
import { createOpfsRoot } from './fixtures/opfsFake.js';
import { fakeIdb } from './support/fakeIndexedDb.js';


let module;
let tmp;
beforeAll(async () => {
  module = await loadWasm();
  tmp = mkdtempSync(join(tmpdir(), 'bgs-blobs-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const post = (path) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}` });
const opts = (blobStore, extra = {}) => ({
  now: () => 1_000,
  seed: 3,
  installId: 'blobs',
  queues: [{ name: 'outbox', maxBodyBytes: 64 * MiB, backoff: { jitter: 'none' } }],
  blobStore,
  ...extra,
});
const bytesOf = async (b) => (b instanceof Uint8Array ? b : new Uint8Array(await b.arrayBuffer()));

const sameBytes = async (got, want) => Buffer.compare(Buffer.from(await bytesOf(got)), Buffer.from(want)) === 0;
const filled = (n, seed) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

/**
 * Each backend: setup() gives open() -> a blob store over the same storage (a new
 * process), with open.sibling(tag) opening the quarantine sibling as an app would (by
 * name; memory only through the original object) and open.siblingAt(tag) its location.
 */
const BACKENDS = [
  ['memory', () => {
    const blobs = openBlobStore({ storage: 'memory' });
    return Object.assign(() => blobs, {
      sibling: (tag) => blobs.sibling(tag),
      siblingAt: (tag) => `memory:${tag}`,
    });
  }],
  ['file', () => {
    const dir = join(tmp, `b${Math.random().toString(36).slice(2)}`);
    return Object.assign(() => openBlobStore({ storage: 'file', dir }), {
      sibling: (tag) => openBlobStore({ storage: 'file', dir: `${dir}.${tag}` }),
      siblingAt: (tag) => `${dir}.${tag}`,
    });
  }],
  ['opfs', () => {
    const root = createOpfsRoot();
    return Object.assign(() => openBlobStore({ storage: 'opfs', name: 't', getDirectory: async () => root }), {
      sibling: (tag) => openBlobStore({ storage: 'opfs', name: `t.${tag}`, getDirectory: async () => root }),
      siblingAt: (tag) => `bgsync-t.${tag}-blobs`,
    });
  }],
  ['indexeddb', () => {
    const factory = new fakeIdb.IDBFactory();
    return Object.assign(() => openBlobStore({ storage: 'indexeddb', name: 't', indexedDB: factory }), {
      sibling: (tag) => openBlobStore({ storage: 'indexeddb', name: `t.${tag}`, indexedDB: factory }),
      siblingAt: (tag) => `bgsync-blobs:t.${tag}`,
    });
  }, !fakeIdb],
];

/** Breaks a chunk of a MemoryStore so that open fails verification (storage-backends.test.js). */
const damage = (store) => {
  store.chunks.get(1).data[100] ^= 0x40;
};
// The page store here is a MemoryStore, whose movedTo has no time: the engine clock (1000) names it.
const TAG = 'corrupt-1000';
const refOf = (engine, id) => engine.items({}).find((i) => i.id === id).bodyRef.id;

for (const [name, setup, skip] of BACKENDS) {
  (skip ? describe.skip : describe)(`large bodies: ${name}`, () => {
    it('keeps a 20 MB upload out of the database pages and hands it to the replay', async () => {
      const open = setup();
      const store = new MemoryStore();
      const engine = await Engine.open(module, store, opts(open()));
      const big = new Uint8Array(20 * MiB);
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
      const small = await engine.enqueue(post('small'), '{"small":true}');
      const { id } = await engine.enqueue(post('upload'), big);
      expect(engine._storedSize).toBeLessThan(MiB); // the database did not grow by 20 MB
      expect(module.HEAPU8.length).toBeLessThan(48 * MiB); // nor did wasm memory hold it for long
      expect((await open().list()).length).toBe(1);
      await engine.close();

      const again = await Engine.open(module, store, opts(open()));
      const items = await again.claim('outbox', 10);
      const item = items.find((i) => i.id === id);
      expect(item.bodySize).toBe(20 * MiB);
      expect(item.bodyRef).toMatchObject({ size: 20 * MiB });
      const got = await bytesOf(again.body(id));
      expect(got.length).toBe(big.length);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(big))).toBe(0);
      expect(new TextDecoder().decode(again.body(small.id))).toBe('{"small":true}');
      // Delivered: the blob goes with it.
      await again.outcome({ id, attempt: item.attempt, status: 201 });
      expect(await open().list()).toEqual([]);
      await again.close();
    }, 60000);

    it('keeps a Blob body over 64 KiB out of the database pages and replays it byte for byte', async () => {
      const open = setup();
      const store = new MemoryStore();
      const engine = await Engine.open(module, store, opts(open())); // the default 64 KiB threshold
      await engine.enqueue(post('small'), '{"small":true}');
      const pagesBefore = engine._storedSize;
      const bytes = new Uint8Array(64 * 1024 + 4099);
      for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + 7) & 0xff;
      const blob = new Blob([bytes.subarray(0, 1000), bytes.subarray(1000)], { type: 'application/octet-stream' });
      const { id } = await engine.enqueue(post('blob'), blob);
      // Inline, the body would add at least its own size in overflow pages.
      expect(engine._storedSize - pagesBefore).toBeLessThan(bytes.length);
      expect(await open().list()).toHaveLength(1);
      await engine.close();

      const again = await Engine.open(module, store, opts(open()));
      const item = (await again.claim('outbox', 10)).find((i) => i.id === id);
      expect(item.bodyRef).toEqual({ id: expect.any(String), size: bytes.length });
      const got = await bytesOf(again.body(id));
      expect(got.length).toBe(bytes.length);
      expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes))).toBe(0);
      await again.close();
    });

    it('writes the blob before the item: a failed enqueue leaves neither, a crash leaves an orphan that open collects', async () => {
      const open = setup();
      const store = new MemoryStore();
      const engine = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      // The item is refused (bad URL): the blob written before it is removed again.
      await expect(engine.enqueue({ queue: 'outbox', method: 'POST', url: 'nope' }, new Uint8Array(5000))).rejects.toMatchObject({ code: 'invalid-url' });
      expect(await open().list()).toEqual([]);
      // The flush of the item fails: same.
      store.failNext(Object.assign(new Error('full'), { name: 'QuotaExceededError' }));
      await expect(engine.enqueue(post('q'), new Uint8Array(5000))).rejects.toMatchObject({ code: 'storage-quota' });
      expect(await open().list()).toEqual([]);
      const kept = await engine.enqueue(post('kept'), new Uint8Array(5000).fill(9));
      await engine.close();
      // A crash after the blob's write, before the item's flush: an orphan blob.
      await open().put('b-orphan', new Uint8Array(3000));
      const again = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      const ids = await open().list();
      expect(ids).toHaveLength(1);
      expect(ids).not.toContain('b-orphan');
      expect((await bytesOf(await again.readBody(kept.id)))[0]).toBe(9);
      await again.close();
    });

    it('a quarantine takes the large bodies with the damaged store, byte for byte, and later opens keep them there', async () => {
      const open = setup();
      const store = new MemoryStore();
      const engine = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      const body = filled(5000, 1);
      const { id } = await engine.enqueue(post('big'), body);
      await engine.enqueue(post('small'), '{"small":true}');
      const ref = refOf(engine, id);
      await engine.close();
      damage(store);

      const reports = [];
      const fresh = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000, onCorrupt: 'quarantine', onRecovery: (r) => reports.push(r) }));
      expect(fresh.items({})).toEqual([]);
      expect(fresh.recovery).toEqual({
        code: 'storage-corrupt',
        detail: expect.any(String),
        movedTo: expect.any(String),
        at: 1000,
        blobsMovedTo: open.siblingAt(TAG),
        blobsMoved: 1,
      });
      expect(reports).toEqual([fresh.recovery]);
      expect(await open().list()).toEqual([]);
      let sibling = open.sibling(TAG);
      expect(await sibling.list()).toEqual([ref]);
      expect(await sameBytes(await sibling.get(ref), body)).toBe(true);
      await sibling.close();

      // The fresh store's own large body, then a normal open: it collects nothing of the copy.
      const next = await fresh.enqueue(post('next'), filled(3000, 7));
      const nextRef = refOf(fresh, next.id);
      await fresh.close();
      const again = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      expect(again.recovery).toBeNull();
      expect(await open().list()).toEqual([nextRef]);
      expect(await sameBytes(await again.readBody(next.id), filled(3000, 7))).toBe(true);
      sibling = open.sibling(TAG);
      expect(await sibling.list()).toEqual([ref]);
      expect(await sameBytes(await sibling.get(ref), body)).toBe(true);
      await sibling.close();
      await again.close();
    });

    it('a move that fails part way loses no body: the rest stay, are reported, and the next open moves them on', async () => {
      const open = setup();
      const store = new MemoryStore();
      const engine = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      const bodies = new Map();
      for (const seed of [1, 2, 3]) {
        const { id } = await engine.enqueue(post(`big${seed}`), filled(4000 + seed, seed));
        bodies.set(refOf(engine, id), filled(4000 + seed, seed));
      }
      await engine.close();
      damage(store);

      // The second write into the sibling fails (a full disk).
      const blobs = open();
      const siblingOf = blobs.sibling.bind(blobs);
      let puts = 0;
      blobs.sibling = (tag) => {
        const s = siblingOf(tag);
        const put = s.put.bind(s);
        s.put = async (id, body) => {
          if (++puts === 2) throw new DOMException('disk full', 'QuotaExceededError');
          return put(id, body);
        };
        return s;
      };
      const fresh = await Engine.open(module, store, opts(blobs, { largeBodyBytes: 1000, onCorrupt: 'quarantine' }));
      delete blobs.sibling;
      expect(fresh.recovery).toMatchObject({ blobsMovedTo: open.siblingAt(TAG), blobsMoved: 1, blobsLeft: 2, blobsError: 'disk full' });
      expect(fresh.items({})).toEqual([]);
      const here = await open().list();
      expect(here).toHaveLength(2); // not collected by this open
      let sibling = open.sibling(TAG);
      const moved = await sibling.list();
      expect(moved).toHaveLength(1);
      expect([...here, ...moved].sort()).toEqual([...bodies.keys()].sort());
      await sibling.close();

      // This life's own large body stays; the next open moves the two left over.
      const next = await fresh.enqueue(post('next'), filled(3000, 9));
      const nextRef = refOf(fresh, next.id);
      await fresh.close();
      const again = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      expect(await open().list()).toEqual([nextRef]);
      expect(await sameBytes(await again.readBody(next.id), filled(3000, 9))).toBe(true);
      sibling = open.sibling(TAG);
      expect((await sibling.list()).sort()).toEqual([...bodies.keys()].sort());
      for (const [ref, body] of bodies) expect(await sameBytes(await sibling.get(ref), body)).toBe(true);
      await sibling.close();
      await again.close();

      // The move is finished: a later orphan is collected as usual, not moved.
      await open().put('b-orphan', new Uint8Array(2000));
      const third = await Engine.open(module, store, opts(open(), { largeBodyBytes: 1000 }));
      expect(await open().list()).toEqual([nextRef]);
      sibling = open.sibling(TAG);
      expect(await sibling.list()).toHaveLength(3);
      await sibling.close();
      await third.close();
    });

    it('answers null for a blob it does not hold, and refuses a bad quarantine tag and the reserved id', async () => {
      const blobs = setup()();
      expect(await blobs.get('b-none')).toBeNull();
      await expect(blobs.quarantine('../up')).rejects.toThrow(TypeError);
      await expect(blobs.put('.quarantine-pending', new Uint8Array(1))).rejects.toThrow(TypeError);
      expect(await blobs.list()).toEqual([]);
    });

    it('a full disk while writing the body rejects with storage-quota and leaves no item', async () => {
      const open = setup();
      const blobs = open();
      const put = blobs.put.bind(blobs);
      blobs.put = async (id, body) => {
        if (blobs.full) throw new DOMException('full', 'QuotaExceededError');
        return put(id, body);
      };
      const engine = await Engine.open(module, new MemoryStore(), opts(blobs, { largeBodyBytes: 1000 }));
      blobs.full = true;
      await expect(engine.enqueue(post('big'), new Uint8Array(5000))).rejects.toMatchObject({ name: 'BgsyncError', code: 'storage-quota' });
      expect(engine.items({})).toEqual([]);
      blobs.full = false;
      await engine.enqueue(post('later'), new Uint8Array(5000));
      expect(engine.items({}).map((i) => i.url)).toEqual(['https://api.test/later']);
      await engine.close();
    });

    it('keeps bodies inline in a queue with a batch endpoint (the engine builds batch bodies itself)', async () => {
      const open = setup();
      const engine = await Engine.open(module, new MemoryStore(), opts(open(), {
        largeBodyBytes: 100,
        queues: [{ name: 'outbox', batch: { url: 'https://api.test/batch', maxItems: 10 } }],
      }));
      const { id } = await engine.enqueue(post('b'), new Uint8Array(5000).fill(4));
      expect(await open().list()).toEqual([]);
      expect(engine.body(id).length).toBe(5000);
      await engine.close();
    });

    it('refuses a caller-supplied bodyRef and counts the external size for the queue limits', async () => {
      const open = setup();
      const engine = await Engine.open(module, new MemoryStore(), opts(open(), { largeBodyBytes: 100, queues: [{ name: 'outbox', maxBodyBytes: 1000 }] }));
      await expect(engine.enqueue({ ...post('x'), bodyRef: { id: 'b-x', size: 1 } }, new Uint8Array(500))).rejects.toMatchObject({ code: 'invalid-argument' });
      await expect(engine.enqueue(post('too-big'), new Uint8Array(5000))).rejects.toMatchObject({ code: 'body-too-large' });
      expect(await open().list()).toEqual([]);
      await engine.close();
    });

    it('refuses a body over maxBodyBytes before it writes a byte of it', async () => {
      const open = setup();
      const blobs = open();
      const puts = [];
      const put = blobs.put.bind(blobs);
      blobs.put = (id, body) => {
        puts.push(id);
        return put(id, body);
      };
      const engine = await Engine.open(module, new MemoryStore(), opts(blobs, { largeBodyBytes: 100, queues: [{ name: 'outbox', maxBodyBytes: 1000 }] }));
      await expect(engine.enqueue(post('too-big'), new Uint8Array(5000))).rejects.toMatchObject({ code: 'body-too-large' });
      await expect(engine.enqueue({ ...post('nowhere'), queue: 'nowhere' }, new Uint8Array(5000))).rejects.toMatchObject({ code: 'unknown-queue' });
      expect(puts).toEqual([]);
      // At the limit it is stored (outside the pages) as before.
      await engine.enqueue(post('fits'), new Uint8Array(1000));
      expect(puts).toHaveLength(1);
      expect(engine.items({}).map((i) => i.url)).toEqual(['https://api.test/fits']);
      await engine.close();
    });
  });
}

describe('quarantine with a page store that names its copy', () => {
  it('puts the bodies beside the OPFS page copy: bgsync-t.corrupt-<time> and bgsync-t.corrupt-<time>-blobs', async () => {
    const root = createOpfsRoot();
    const getDirectory = async () => root;
    const pages = () => new OpfsStore({ name: 't', getDirectory });
    const blobs = (name = 't') => openBlobStore({ storage: 'opfs', name, getDirectory });
    const engine = await Engine.open(module, pages(), opts(blobs(), { largeBodyBytes: 1000 }));
    const body = filled(6000, 3);
    const { id } = await engine.enqueue(post('big'), body);
    const ref = refOf(engine, id);
    await engine.close();
    // A byte inside the first log record's first chunk (as storage-backends.test.js does).
    const dir = await root.getDirectoryHandle('bgsync-t');
    const first = [...dir.entries.keys()].filter((n) => n.startsWith('log-')).sort()[0];
    const handle = dir.entries.get(first);
    const n = new DataView(handle.bytes.buffer).getUint32(16 + 12, true);
    handle.bytes[16 + 16 + n * 8 + 100] ^= 0x40;

    const fresh = await Engine.open(module, pages(), opts(blobs(), { largeBodyBytes: 1000, onCorrupt: 'quarantine' }));
    const { movedTo, blobsMovedTo } = fresh.recovery;
    expect(movedTo).toMatch(/^bgsync-t\.corrupt-\d+$/);
    expect(blobsMovedTo).toBe(`${movedTo}-blobs`);
    // An app opens both copies by the same name.
    const copyName = movedTo.slice('bgsync-'.length);
    const copy = blobs(copyName);
    expect(await copy.list()).toEqual([ref]);
    expect(await sameBytes(await copy.get(ref), body)).toBe(true);
    expect(await blobs().list()).toEqual([]);
    await fresh.close();
  });
});
