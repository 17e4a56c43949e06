/**
 * BlobStore -- large request bodies outside the database, one durable object per blob id.
 *
 * Why: the database lives in WebAssembly memory and every changed page is written again
 * by a flush; a 20 MB upload inside it would cost 20 MB of wasm memory for as long as it
 * waits and 20 MB of page writes. Engine (option `blobStore`) stores any body larger
 * than `largeBodyBytes` (64 KiB by default), and every Blob, here instead, and the item
 * carries only {"bodyRef": {"id", "size"}} (see bgs_enqueue in core/include/bgsync.h).
 *
 * Order (what makes it safe):
 *  1. put(id, body) resolves only when the blob is durable;
 *  2. only then is the item enqueued (its flush makes the reference durable);
 *  3. the blob is deleted after the item is done, or at once if the enqueue failed;
 *  4. at open, blobs that no unfinished item references (a crash between 1 and 2, an
 *     item cancelled or discarded) are collected (Engine.collectBlobs).
 * A reference never points to a missing blob; a blob may briefly outlive its item.
 *
 * Backends (openBlobStore): IndexedDB (database `bgsync-blobs:<name>`, the Blob itself
 * as the value, durability 'strict'), OPFS (directory `bgsync-<name>-blobs`, a file per
 * blob written through createWritable, atomic on close), a directory in Node (write a
 * temporary file, fsync, rename, fsync the directory) and memory.
 * get() returns what fetch() can send: a Blob (IndexedDB, OPFS: backed by the disk, not
 * copied into memory) or a Uint8Array (Node, memory).
 */
import { importNodeOnly } from './importNodeOnly.js';

const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

function checkId(id) {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new TypeError(`bgsync: bad blob id '${id}'`);
}

/** Uint8Array view of bytes-like input (Blobs are read by the backends that need bytes). */
async function toBytes(body) {
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (typeof Blob !== 'undefined' && body instanceof Blob) return new Uint8Array(await body.arrayBuffer());
  throw new TypeError('bgsync: a blob body must be a Blob, an ArrayBuffer or a typed array');
}

/** The size in bytes of a body BlobStore accepts, or -1 for anything else. */
export function bodySize(body) {
  if (typeof Blob !== 'undefined' && body instanceof Blob) return body.size;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  return -1;
}

export class BlobStore {
  /** @param {{put, get, delete, list, close?}} backend  see the backends below */
  constructor(backend) {
    this.backend = backend;
  }

  /** Stores body under id; resolves once it is durable. */
  async put(id, body) {
    checkId(id);
    await this.backend.put(id, body);
  }

  /** The body (Blob or Uint8Array), or null when there is no such blob. */
  async get(id) {
    checkId(id);
    return this.backend.get(id);
  }

  /** Removes a blob; a missing one is fine. */
  async delete(id) {
    checkId(id);
    await this.backend.delete(id);
  }

  /** Every stored blob id. */
  async list() {
    return this.backend.list();
  }

  async close() {
    await this.backend.close?.();
  }
}

class MemoryBlobs {
  constructor() {
    this.blobs = new Map();
  }
  async put(id, body) {
    this.blobs.set(id, (await toBytes(body)).slice());
  }
  async get(id) {
    return this.blobs.get(id) ?? null;
  }
  async delete(id) {
    this.blobs.delete(id);
  }
  async list() {
    return [...this.blobs.keys()];
  }
}

class IdbBlobs {
  constructor(name, idb) {
    this.dbName = `bgsync-blobs:${name}`;
    this.idb = idb;
    this.db = null;
  }
  async _open() {
    if (this.db) return this.db;
    this.db = await new Promise((resolve, reject) => {
      const req = this.idb.open(this.dbName, 1);
      req.onupgradeneeded = () => req.result.createObjectStore('blobs');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    this.db.onversionchange = () => {
      this.db?.close();
      this.db = null;
    };
    return this.db;
  }
  async _tx(mode, fn) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction('blobs', mode, { durability: 'strict' });
      let out;
      try {
        out = fn(tx.objectStore('blobs'));
      } catch (err) {
        reject(err);
        return;
      }
      tx.oncomplete = () => resolve(out?.result ?? out);
      tx.onerror = (e) => e.preventDefault?.();
      tx.onabort = () => reject(tx.error ?? new DOMException('blob transaction aborted', 'AbortError'));
    });
  }
  async put(id, body) {
    // A Blob goes in as is (the browser keeps it on disk); bytes are copied out of any
    // larger buffer they view.
    const value = typeof Blob !== 'undefined' && body instanceof Blob ? body : (await toBytes(body)).slice();
    await this._tx('readwrite', (s) => void s.put(value, id));
  }
  async get(id) {
    const v = await this._tx('readonly', (s) => s.get(id));
    return v ?? null;
  }
  async delete(id) {
    await this._tx('readwrite', (s) => void s.delete(id));
  }
  async list() {
    return this._tx('readonly', (s) => s.getAllKeys());
  }
  close() {
    this.db?.close();
    this.db = null;
  }
}

class OpfsBlobs {
  constructor(name, getRoot) {
    this.dirName = `bgsync-${name}-blobs`;
    this.getRoot = getRoot;
    this.dir = null;
  }
  async _dir() {
    if (!this.dir) this.dir = await (await this.getRoot()).getDirectoryHandle(this.dirName, { create: true });
    return this.dir;
  }
  async put(id, body) {
    const handle = await (await this._dir()).getFileHandle(id, { create: true });
    const w = await handle.createWritable({ keepExistingData: false });
    try {
      await w.write(typeof Blob !== 'undefined' && body instanceof Blob ? body : await toBytes(body));
    } catch (err) {
      await w.abort().catch(() => {});
      throw err;
    }
    await w.close();
  }
  async get(id) {
    try {
      return await (await (await this._dir()).getFileHandle(id)).getFile();
    } catch (err) {
      if (err?.name === 'NotFoundError') return null;
      throw err;
    }
  }
  async delete(id) {
    try {
      await (await this._dir()).removeEntry(id);
    } catch (err) {
      if (err?.name !== 'NotFoundError') throw err;
    }
  }
  async list() {
    const names = [];
    for await (const name of (await this._dir()).keys()) if (ID_PATTERN.test(name)) names.push(name);
    return names;
  }
}

class FileBlobs {
  constructor(dir) {
    this.dir = dir;
  }
  async _fs() {
    if (!this.fs) {
      this.fs = await importNodeOnly('node:fs/promises');
      this.path = await importNodeOnly('node:path');
    }
    return this.fs;
  }
  async put(id, body) {
    const fs = await this._fs();
    await fs.mkdir(this.dir, { recursive: true });
    const tmp = this.path.join(this.dir, `${id}.tmp`);
    const h = await fs.open(tmp, 'w');
    try {
      await h.writeFile(await toBytes(body));
      await h.sync();
    } finally {
      await h.close();
    }
    await fs.rename(tmp, this.path.join(this.dir, id));
    const d = await fs.open(this.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }
  async get(id) {
    const fs = await this._fs();
    try {
      return new Uint8Array(await fs.readFile(this.path.join(this.dir, id)));
    } catch (err) {
      if (err?.code === 'ENOENT') return null;
      throw err;
    }
  }
  async delete(id) {
    const fs = await this._fs();
    await fs.rm(this.path.join(this.dir, id), { force: true });
  }
  async list() {
    const fs = await this._fs();
    try {
      return (await fs.readdir(this.dir)).filter((n) => ID_PATTERN.test(n) && !n.endsWith('.tmp'));
    } catch (err) {
      if (err?.code === 'ENOENT') return [];
      throw err;
    }
  }
}

/**
 * The blob store next to a page store (same `storage` and `name` as openStore).
 * @param {{storage?: 'indexeddb'|'opfs'|'memory'|'file', name?: string, dir?: string,
 *          indexedDB?: IDBFactory, getDirectory?: () => Promise<FileSystemDirectoryHandle>}} [options]
 */
export function openBlobStore({ storage = 'indexeddb', name = 'default', dir, indexedDB, getDirectory } = {}) {
  if (storage === 'memory') return new BlobStore(new MemoryBlobs());
  if (storage === 'indexeddb') return new BlobStore(new IdbBlobs(name, indexedDB ?? globalThis.indexedDB));
  if (storage === 'opfs') {
    return new BlobStore(new OpfsBlobs(name, getDirectory ?? (() => globalThis.navigator.storage.getDirectory())));
  }
  if (storage === 'file') return new BlobStore(new FileBlobs(dir ?? `bgsync-${name}-blobs`));
  throw new TypeError(`bgsync: unknown blob storage '${storage}'`);
}
