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
export class IndexedDbStore {
  /** @param {{name?: string, indexedDB?: IDBFactory}} [options] */
  constructor({ name = 'default', indexedDB = globalThis.indexedDB } = {}) {
    this.dbName = `bgsync:${name}`;
    this.idb = indexedDB;
    this.db = null;
  }

  async _open() {
    if (this.db) return this.db;
    this.db = await new Promise((resolve, reject) => {
      const req = this.idb.open(this.dbName, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        if (!db.objectStoreNames.contains('chunks')) db.createObjectStore('chunks');
        if (!db.objectStoreNames.contains('meta')) db.createObjectStore('meta');
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new DOMException('IndexedDB open blocked', 'AbortError'));
    });
    // Another context upgrading the database: let it, this store reopens on next use.
    this.db.onversionchange = () => {
      this.db?.close();
      this.db = null;
    };
    return this.db;
  }

  async load() {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(['chunks', 'meta'], 'readonly');
      const out = { size: undefined, chunks: [] };
      tx.objectStore('meta').get('size').onsuccess = (e) => {
        out.size = e.target.result;
      };
      const cursorReq = tx.objectStore('chunks').openCursor();
      cursorReq.onsuccess = () => {
        const cursor = cursorReq.result;
        if (!cursor) return;
        const { data, crc } = cursor.value;
        out.chunks.push({ index: cursor.key, data: new Uint8Array(data), crc });
        cursor.continue();
      };
      tx.oncomplete = () => resolve(out.size === undefined ? null : out);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new DOMException('load aborted', 'AbortError'));
    });
  }

  async write(changes) {
    const db = await this._open();
    return new Promise((resolve, reject) => {
      const tx = db.transaction(['chunks', 'meta'], 'readwrite', { durability: 'strict' });
      const chunks = tx.objectStore('chunks');
      for (const c of changes.chunks) chunks.put({ data: c.data, crc: c.crc }, c.index);
      const live = Math.ceil(changes.size / changes.chunkSize);
      chunks.delete(IDBKeyRange.lowerBound(live));
      tx.objectStore('meta').put(changes.size, 'size');
      tx.oncomplete = () => resolve();
      tx.onerror = (e) => e.preventDefault?.(); // the abort handler reports it
      tx.onabort = () => reject(tx.error ?? new DOMException('write aborted', 'AbortError'));
    });
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
