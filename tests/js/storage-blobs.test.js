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

const BACKENDS = [
  ['memory', () => {
    const blobs = openBlobStore({ storage: 'memory' });
    return () => blobs;
  }],
  ['file', () => {
    const dir = join(tmp, `b${Math.random().toString(36).slice(2)}`);
    return () => openBlobStore({ storage: 'file', dir });
  }],
  ['opfs', () => {
    const root = createOpfsRoot();
    return () => openBlobStore({ storage: 'opfs', name: 't', getDirectory: async () => root });
  }],
  ['indexeddb', () => {
    const factory = new fakeIdb.IDBFactory();
    return () => openBlobStore({ storage: 'indexeddb', name: 't', indexedDB: factory });
  }, !fakeIdb],
];

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
