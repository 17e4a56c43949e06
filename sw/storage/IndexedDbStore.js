/**
 * IndexedDbStore -- the default page store: the engine's chunks in IndexedDB.
 *
 * Database `bgsync:<name>`, object store `chunks` (key: chunk index, value:
 * {data: Uint8Array, crc}) and `meta` (key 'size'). A write is ONE readwrite
 * transaction: changed chunks, the file size and the removal of chunks past the end
 * commit together or not at all, which is what makes a flush atomic. It resolves on the
 * transaction's `complete` (durability 'strict', so the data is on disk), and rejects
 * with the browser's own error on `abort` (QuotaExceededError, AbortError, ...).
 */
import { BgsyncError } from '../../web/BgsyncError.js';

function txDone(db, mode, fill) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(['chunks', 'meta'], mode, { durability: 'strict' });
    fill(tx);
    tx.oncomplete = () => resolve();
    tx.onerror = (e) => e.preventDefault?.();
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
  });
}

export class IndexedDbStore {
  /** @param {{name?: string, indexedDB?: IDBFactory}} [options] */
  constructor({ name = 'default', indexedDB = globalThis.indexedDB } = {}) {
    this.dbName = `bgsync:${name}`;
    this.idb = indexedDB;
    this.db = null;
    // True while the engine's image sits on top of what this database holds (after a load
    // that found data, or a write). A write that then finds the database gone (deleted
    // under us: site data cleared, another tab) must not store a delta into a new empty
    // database: it fails, and the engine reloads from what the store really holds.
    this.known = false;
  }

  async _open({ forLoad = false } = {}) {
    if (this.db) return this.db;
    this.db = await new Promise((resolve, reject) => {
      const req = this.idb.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        if (this.known && !forLoad) {
          req.transaction.abort(); // do not recreate it here; load() will
          reject(new BgsyncError('storage-failed', `${this.dbName} was deleted while in use; the queue reloads from storage`));
          return;
        }
        const db = req.result;
        if (!db.objectStoreNames.contains('chunks')) db.createObjectStore('chunks');
        if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error); // after an abort above, the first reject stands
      req.onblocked = () => reject(new DOMException('IndexedDB open blocked', 'AbortError'));
    });
    // Another context upgrading or deleting the database: let it, this store reopens on next use.
    this.db.onversionchange = () => {
      this.db?.close();
      this.db = null;
    };
    return this.db;
  }

  async load() {
    const db = await this._open({ forLoad: true });
    const stored = await new Promise((resolve, reject) => {
      const tx = db.transaction(['chunks', 'meta'], 'readonly');
      const out = { size: undefined, chunks: [] };
      tx.objectStore('meta').get('size').onsuccess = (e) => {
        out.size = e.target.result;
      };
      // Two bulk reads, not a cursor: a cursor costs a round trip per chunk, and reading
      // the store is most of a cold start (a worker woken by `sync` with work queued).
      const chunks = tx.objectStore('chunks');
      let keys;
      let values;
      chunks.getAllKeys().onsuccess = (e) => {
        keys = e.target.result;
      };
      chunks.getAll().onsuccess = (e) => {
        values = e.target.result;
        for (let i = 0; i < values.length; i++) {
          const { data, crc } = values[i];
          out.chunks.push({ index: keys[i], data: new Uint8Array(data), crc });
        }
      };
      tx.oncomplete = () => {
        if (out.size !== undefined) resolve(out);
        else if (out.chunks.length === 0) resolve(null); // a new store
        else reject(new BgsyncError('storage-corrupt', 'chunks without a file size'));
      };
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new DOMException('load aborted', 'AbortError'));
    });
    this.known = stored !== null;
    return stored;
  }

  async write(changes) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(['chunks', 'meta'], 'readwrite', { durability: 'strict' });
      try {
        const chunks = tx.objectStore('chunks');
        // slice(): c.data views the whole changes buffer, and structured clone would store
        // all of it with every chunk.
        for (const c of changes.chunks) chunks.put({ data: c.data.slice(), crc: c.crc }, c.index);
        const live = Math.ceil(changes.size / changes.chunkSize);
        chunks.delete(IDBKeyRange.lowerBound(live));
        tx.objectStore('meta').put(changes.size, 'size');
      } catch (err) {
        // A request on a transaction that aborted meanwhile (or a clone error): nothing commits.
        try {
          tx.abort();
        } catch {
          // already aborted
        }
        reject(tx.error ?? err);
        return;
      }
      tx.oncomplete = () => {
        this.known = true;
        resolve();
      };
      tx.onerror = (e) => e.preventDefault?.(); // the abort handler reports it
      tx.onabort = () => reject(tx.error ?? new DOMException('write aborted', 'AbortError'));
    });
  }

  /**
   * Keeps a damaged store for inspection: copies it into `bgsync:<name>.corrupt-<time>`
   * (IndexedDB cannot rename a database), then empties this one in one transaction.
   */
  async quarantine() {
    const stored = await this._readRaw();
    const movedTo = `${this.dbName}.corrupt-${Date.now()}`;
    const copy = new IndexedDbStore({ indexedDB: this.idb });
    copy.dbName = movedTo;
    const db = await copy._open();
    await txDone(db, 'readwrite', (tx) => {
      for (const [key, value] of stored.chunks) tx.objectStore('chunks').put(value, key);
      for (const [key, value] of stored.meta) tx.objectStore('meta').put(value, key);
    });
    copy.close();
    await txDone(await this._open(), 'readwrite', (tx) => {
      tx.objectStore('chunks').clear();
      tx.objectStore('meta').clear();
    });
    return { movedTo };
  }

  /** Every record as stored, whatever it holds (quarantine copies damaged data too). */
  async _readRaw() {
    const db = await this._open();
    const out = { chunks: [], meta: [] };
    await txDone(db, 'readonly', (tx) => {
      for (const name of ['chunks', 'meta']) {
        const req = tx.objectStore(name).openCursor();
        req.onsuccess = () => {
          const cursor = req.result;
          if (!cursor) return;
          out[name].push([cursor.key, cursor.value]);
          cursor.continue();
        };
      }
    });
    return out;
  }

  close() {
    this.db?.close();
    this.db = null;
  }

  /** Removes the database (tests, "start fresh" recovery). */
  async destroy() {
    this.close();
    await new Promise((resolve, reject) => {
      const req = this.idb.deleteDatabase(this.dbName);
      req.onsuccess = () => resolve();
      req.onerror = () => reject(req.error);
    });
  }
}
