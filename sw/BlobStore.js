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
 *
 * Quarantine (quarantine(tag), when open set a damaged page store aside): the bodies go
 * with the damaged copy, into the sibling store of the same backend named `<name>.<tag>`
 * (`tag` is `corrupt-<time>`, the page store's suffix): IndexedDB `bgsync-blobs:<name>.<tag>`,
 * OPFS `bgsync-<name>.<tag>-blobs`, Node `<dir>.<tag>`. openBlobStore({storage, name:
 * `<name>.<tag>`}) opens it, as openStore does the page copy. Memory keeps its sibling in
 * the original object (sibling(tag)): there is nowhere else it could be found again.
 * Order: a marker naming the tag is written first; then one blob at a time is written to
 * the sibling (durable) before it is deleted here; the marker goes last. A failure or a
 * crash part way loses nothing: the rest stay here with the marker, and the next
 * collection (Engine.collectBlobs) moves its orphans to that sibling instead of deleting.
 */
import { importNodeOnly } from './importNodeOnly.js';

const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
const TAG_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
// Names the sibling of a quarantine not finished yet. A valid id (every backend stores it
// as a blob) that no body gets: the engine's ids start with 'b-', put() refuses this one.
const QUARANTINE_MARKER = '.quarantine-pending';

function checkId(id) {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new TypeError(`bgsync: bad blob id '${id}'`);
}

function checkTag(tag) {
  if (typeof tag !== 'string' || !TAG_PATTERN.test(tag)) throw new TypeError(`bgsync: bad quarantine tag '${tag}'`);
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
    if (id === QUARANTINE_MARKER) throw new TypeError(`bgsync: blob id '${id}' is reserved`);
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
    return (await this.backend.list()).filter((id) => id !== QUARANTINE_MARKER);
  }

  /** Where the blobs are: a database name, a directory, or 'memory[:<tag>]'. */
  get location() {
    return this.backend.location;
  }

  /** The store of the same backend that quarantine(tag) moves blobs into (see the top). */
  sibling(tag) {
    checkTag(tag);
    if (typeof this.backend.sibling !== 'function') throw new TypeError('bgsync: this blob backend has no sibling stores');
    return new BlobStore(this.backend.sibling(tag));
  }

  /**
   * Moves blobs (all, or the listed `ids`) into sibling(tag), one at a time so memory
   * holds at most one body (a Blob from IndexedDB or OPFS is not even read). Never loses a
   * body: each is durable there before it is deleted here. Resolves with
   * {movedTo, moved, left, error?}: movedTo is the sibling's location (null when there was
   * nothing to move); on a failure, `error` is it, `left` the ids still here, and the
   * marker stays so that the next collection finishes the move (pendingQuarantine).
   */
  async quarantine(tag, ids) {
    checkTag(tag);
    const todo = ids ?? (await this.list());
    if (todo.length === 0) {
      await this.backend.delete(QUARANTINE_MARKER); // an earlier, interrupted move is finished
      return { movedTo: null, moved: 0, left: [] };
    }
    const sibling = this.sibling(tag);
    let moved = 0;
    try {
      await this.backend.put(QUARANTINE_MARKER, new TextEncoder().encode(tag));
      for (const id of todo) {
        const body = await this.get(id);
        if (body === null) continue; // gone meanwhile: nothing to keep
        await sibling.put(id, body);
        await this.delete(id);
        moved++;
      }
      await this.backend.delete(QUARANTINE_MARKER);
    } catch (error) {
      const here = new Set(await this.list().catch(() => todo));
      return { movedTo: sibling.location, moved, left: todo.filter((id) => here.has(id)), error };
    } finally {
      await sibling.close().catch(() => {});
    }
    return { movedTo: sibling.location, moved, left: [] };
  }

  /** The tag of a quarantine whose move did not finish (a crash, a failure), or null. */
  async pendingQuarantine() {
    const marker = await this.backend.get(QUARANTINE_MARKER);
    if (marker === null) return null;
    const tag = new TextDecoder().decode(await toBytes(marker));
    return TAG_PATTERN.test(tag) ? tag : null;
  }

  async close() {
    await this.backend.close?.();
  }
}

class MemoryBlobs {
  constructor(location = 'memory') {
    this.location = location;
    this.blobs = new Map();
    this.siblings = new Map(); // tag -> MemoryBlobs: reachable only through this object
  }
  sibling(tag) {
    if (!this.siblings.has(tag)) this.siblings.set(tag, new MemoryBlobs(`${this.location}:${tag}`));
    return this.siblings.get(tag);
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
    this.name = name;
    this.dbName = `bgsync-blobs:${name}`;
    this.idb = idb;
    this.db = null;
  }
  get location() {
    return this.dbName;
  }
  sibling(tag) {
    return new IdbBlobs(`${this.name}.${tag}`, this.idb);
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
      // fn returns a request or nothing; a missing key's result is undefined (get() -> null).
      tx.oncomplete = () => resolve(out?.result);
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
    this.name = name;
    this.dirName = `bgsync-${name}-blobs`;
    this.getRoot = getRoot;
    this.dir = null;
  }
  get location() {
    return this.dirName;
  }
  sibling(tag) {
    return new OpfsBlobs(`${this.name}.${tag}`, this.getRoot);
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
  get location() {
    return this.dir;
  }
  sibling(tag) {
    return new FileBlobs(`${this.dir}.${tag}`);
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
