/**
 * IndexedDbStore -- the default page store: the engine's chunks in IndexedDB.
 *
 * Database `bgsync:<name>` (version 2), three object stores:
 *  - `chunks`: loose chunks, key the chunk index, value {data: Uint8Array, crc};
 *  - `segments`: SEGMENT_CHUNKS consecutive chunks in one record, key the segment number
 *    k (chunks k*SEGMENT_CHUNKS ...), value {data: Uint8Array (n whole chunks), crcs: [n]};
 *  - `meta`: key 'size', the file size; key 'ahead', the head start's tickets (HeadStart.js),
 *    written by the same transactions as the chunks they were computed from.
 * A chunk's current bytes are its loose record if there is one, else its segment's slot;
 * slots at or past the end of the file mean nothing.
 *
 * Why two shapes: a flush changes a few chunks, so it writes small loose records (one
 * enqueue = about four 4 KiB puts). But reading thousands of small records is what made a
 * cold start slow (Chromium 156: 551 records of 4 KiB took 220-260 ms to read, the same
 * bytes as 35 records of 64 KiB took 25 ms). So once LOOSE_LIMIT loose chunks pile up,
 * a compaction folds them into their segments, in a readwrite transaction of its own.
 *
 * Atomicity: a write is ONE readwrite transaction (changed chunks, the file size, the
 * removal of what lies past the end, in chunks and in segments) that commits whole or not
 * at all; it resolves on `complete` (durability 'strict': on disk) and rejects with the
 * browser's own error on `abort` (QuotaExceededError, AbortError, ...). A compaction is
 * one transaction too, and it changes where bytes live, never what they are: a failed one
 * leaves the store as it was. IndexedDB runs readwrite transactions on the same stores in
 * the order they were created, so a compaction never interleaves with a write.
 */
import { BgsyncError } from '../../web/BgsyncError.js';

const STORES = ['chunks', 'segments', 'meta'];
export const SEGMENT_CHUNKS = 16; // 64 KiB segments at the engine's 4 KiB chunks
export const LOOSE_LIMIT = 96; // loose chunks that trigger a compaction (a load reads them one by one)

const CHUNK_BYTES = 4096; // the engine's chunk size: must match BGS_CHUNK_SIZE in core/include/bgsync.h

/**
 * The load's records as the engine wants them: {size, chunks: [{index, data, crc}]}, each
 * chunk once (a loose record wins over its segment's slot), or null for a new store.
 * Segment slots past the end or never filled are left out; verifyStored (Engine.js)
 * then judges the whole. A record of the wrong shape is storage-corrupt.
 */
function assemble({ size, chunksKeys, chunks, segmentsKeys, segments }) {
  if (size === undefined) {
    if (chunks.length === 0 && segments.length === 0) return null; // a new store
    throw new BgsyncError('storage-corrupt', 'chunks without a file size');
  }
  const live = Math.ceil(size / CHUNK_BYTES);
  const out = [];
  const loose = new Set(chunksKeys);
  chunksKeys.forEach((index, i) => {
    const { data, crc } = chunks[i] ?? {};
    out.push({ index, data: new Uint8Array(data ?? 0), crc });
  });
  segmentsKeys.forEach((k, i) => {
    const seg = segments[i];
    const slots = Array.isArray(seg?.crcs) ? seg.crcs.length : -1;
    if (!Number.isInteger(k) || k < 0 || !(seg.data instanceof Uint8Array) || slots < 0 || slots > SEGMENT_CHUNKS ||
      seg.data.length !== slots * CHUNK_BYTES) {
      throw new BgsyncError('storage-corrupt', `segment ${k} is not a segment record`);
    }
    for (let j = 0; j < slots; j++) {
      const index = k * SEGMENT_CHUNKS + j;
      if (index >= live || loose.has(index) || seg.crcs[j] === null) continue;
      out.push({ index, data: seg.data.subarray(j * CHUNK_BYTES, (j + 1) * CHUNK_BYTES), crc: seg.crcs[j] });
    }
  });
  return { size, chunks: out };
}

/** Removes segment slots at or past chunk `live` (inside a readwrite transaction). */
function trimSegments(segments, live) {
  const firstWhole = Math.ceil(live / SEGMENT_CHUNKS);
  segments.delete(IDBKeyRange.lowerBound(firstWhole));
  const k = Math.floor(live / SEGMENT_CHUNKS);
  const keep = live - k * SEGMENT_CHUNKS;
  if (keep === 0) return; // segment k starts at the end: deleted above
  segments.get(k).onsuccess = (e) => {
    const seg = e.target.result;
    if (!seg || !Array.isArray(seg.crcs) || seg.crcs.length <= keep) return;
    segments.put({ data: seg.data.slice(0, keep * CHUNK_BYTES), crcs: seg.crcs.slice(0, keep) }, k);
  };
}

/** Segment k with `slots` chunks: the stored one (if any) overlaid with the loose chunks. */
function mergeSegment(existing, loose, k, slots) {
  const data = new Uint8Array(slots * CHUNK_BYTES);
  const crcs = new Array(slots).fill(null); // null: no chunk there (yet)
  if (existing) {
    const n = Math.min(slots, existing.crcs.length);
    data.set(existing.data.subarray(0, n * CHUNK_BYTES));
    for (let j = 0; j < n; j++) crcs[j] = existing.crcs[j];
  }
  for (const c of loose) {
    const j = c.index - k * SEGMENT_CHUNKS;
    if (!(c.data instanceof Uint8Array) || c.data.length !== CHUNK_BYTES) throw new BgsyncError('storage-corrupt', `chunk ${c.index} has a wrong length`);
    data.set(c.data, j * CHUNK_BYTES);
    crcs[j] = c.crc;
  }
  return { data, crcs };
}

function txDone(db, mode, fill) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORES, mode, { durability: 'strict' });
    fill(tx);
    tx.oncomplete = () => resolve();
    tx.onerror = (e) => e.preventDefault?.();
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
  });
}

export class IndexedDbStore {
  /** @param {{name?: string, indexedDB?: IDBFactory}} [options] */
  constructor({ name = 'default', indexedDB = globalThis.indexedDB, looseLimit = LOOSE_LIMIT } = {}) {
    this.dbName = `bgsync:${name}`;
    this.idb = indexedDB;
    this.db = null;
    this.looseLimit = looseLimit;
    this.loose = new Set(); // chunk indexes held as loose records (as far as this store wrote or read)
    this.live = null; // chunks in the file after the last load or write; null = unknown
    this.compacting = null; // the compaction under way, if any
    this.stats = { compactions: 0, failedCompactions: 0 };
    // True while the engine's image sits on top of what this database holds (after a load
    // that found data, or a write). A write that then finds the database gone (deleted
    // under us: site data cleared, another tab) must not store a delta into a new empty
    // database: it fails, and the engine reloads from what the store really holds.
    this.known = false;
  }

  async _open({ forLoad = false } = {}) {
    if (this.db) return this.db;
    // One open request however many calls wait for it (a load and readAhead at start).
    this._opening ??= this._openNow(forLoad).finally(() => {
      this._opening = null;
    });
    return this._opening;
  }

  async _openNow(forLoad) {
    this.db = await new Promise((resolve, reject) => {
      const req = this.idb.open(this.dbName, 2);
      req.onupgradeneeded = (e) => {
        // A database new to the browser (version 0) while this store had data in it was
        // deleted under us. (Version 1, from an earlier bgsync, only gains `segments`.)
        if (e.oldVersion === 0 && this.known && !forLoad) {
          req.transaction.abort(); // do not recreate it here; load() will
          reject(new BgsyncError('storage-failed', `${this.dbName} was deleted while in use; the queue reloads from storage`));
          return;
        }
        const db = req.result;
        for (const name of STORES) if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
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

  /** Opens the connection ahead of a load (lockedStore: while the lock is awaited); reads nothing. */
  prepare() {
    this._open({ forLoad: true }).catch(() => {}); // load() meets the same error again
  }

  /**
   * `onAhead(tickets)`: called with the head start's tickets (or null) as soon as they are
   * read, the first request of the load's transaction, long before the chunks arrive.
   */
  async load({ onAhead } = {}) {
    await this.compacting;
    const db = await this._open({ forLoad: true });
    const raw = await new Promise((resolve, reject) => {
      const tx = db.transaction(STORES, 'readonly');
      const out = { size: undefined };
      const meta = tx.objectStore('meta');
      if (onAhead) {
        meta.get('ahead').onsuccess = (e) => onAhead(e.target.result ?? null);
      }
      meta.get('size').onsuccess = (e) => {
        out.size = e.target.result;
      };
      // Bulk reads, not cursors: a cursor costs a round trip per record, and reading the
      // store is most of a cold start (a worker woken by `sync` with work queued).
      for (const name of ['chunks', 'segments']) {
        const os = tx.objectStore(name);
        os.getAllKeys().onsuccess = (e) => {
          out[`${name}Keys`] = e.target.result;
        };
        os.getAll().onsuccess = (e) => {
          out[name] = e.target.result;
        };
      }
      tx.oncomplete = () => resolve(out);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new DOMException('load aborted', 'AbortError'));
    });
    const stored = assemble(raw);
    this.known = stored !== null;
    this.loose = new Set(raw.chunksKeys);
    this.live = stored ? Math.ceil(stored.size / CHUNK_BYTES) : 0;
    return stored;
  }

  /** The head start's tickets as last written (HeadStart.js), or null: one small read. */
  async readAhead() {
    const db = await this._open({ forLoad: true });
    return new Promise((resolve, reject) => {
      const tx = db.transaction(['meta'], 'readonly');
      const req = tx.objectStore('meta').get('ahead');
      tx.oncomplete = () => resolve(req.result ?? null);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new DOMException('read aborted', 'AbortError'));
    });
  }

  async write(changes) {
    const db = await this._open();
    const live = Math.ceil(changes.size / changes.chunkSize);
    await new Promise((resolve, reject) => {
      const tx = db.transaction(STORES, 'readwrite', { durability: 'strict' });
      try {
        const chunks = tx.objectStore('chunks');
        // slice(): c.data views the whole changes buffer, and structured clone would store
        // all of it with every chunk.
        for (const c of changes.chunks) chunks.put({ data: c.data.slice(), crc: c.crc }, c.index);
        chunks.delete(IDBKeyRange.lowerBound(live));
        // A file that shrank: segment slots past the end go too, so that a later regrowth
        // can never bring their old bytes back.
        if (this.live === null || live < this.live) trimSegments(tx.objectStore('segments'), live);
        const meta = tx.objectStore('meta');
        meta.put(changes.size, 'size');
        if (changes.ahead === null) meta.delete('ahead');
        else if (changes.ahead !== undefined) meta.put(changes.ahead, 'ahead');
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
        this.live = live;
        for (const c of changes.chunks) this.loose.add(c.index);
        for (const i of this.loose) if (i >= live) this.loose.delete(i);
        resolve();
      };
      tx.onerror = (e) => e.preventDefault?.(); // the abort handler reports it
      tx.onabort = () => reject(tx.error ?? new DOMException('write aborted', 'AbortError'));
    });
    if (this.loose.size >= this.looseLimit && !this.compacting) {
      // Not awaited: the flush is durable already; the next transaction queues behind it.
      this.compacting = this.compact()
        .catch(() => {
          this.stats.failedCompactions++; // the store is as it was; a later write tries again
        })
        .finally(() => {
          this.compacting = null;
        });
    }
  }

  /**
   * Folds every loose chunk into its segment, in one readwrite transaction: read the loose
   * records and the segments they belong to, write the merged segments, delete the loose
   * records. Resolves with the number of chunks folded.
   */
  async compact() {
    const db = await this._open();
    let folded = 0;
    await new Promise((resolve, reject) => {
      const tx = db.transaction(STORES, 'readwrite', { durability: 'strict' });
      const chunks = tx.objectStore('chunks');
      const segments = tx.objectStore('segments');
      const fail = (err) => {
        try {
          tx.abort();
        } catch {
          // already aborted
        }
        reject(err);
      };
      let size;
      let keys;
      let values;
      tx.objectStore('meta').get('size').onsuccess = (e) => {
        size = e.target.result;
      };
      chunks.getAllKeys().onsuccess = (e) => {
        keys = e.target.result;
      };
      chunks.getAll().onsuccess = (e) => {
        values = e.target.result;
        try {
          const live = Math.ceil((size ?? 0) / CHUNK_BYTES);
          const bySegment = new Map();
          keys.forEach((index, i) => {
            if (index >= live) return; // past the end: a write already deletes these
            const k = Math.floor(index / SEGMENT_CHUNKS);
            if (!bySegment.has(k)) bySegment.set(k, []);
            bySegment.get(k).push({ index, ...values[i] });
          });
          for (const [k, loose] of bySegment) {
            segments.get(k).onsuccess = (ev) => {
              try {
                const slots = Math.min(SEGMENT_CHUNKS, live - k * SEGMENT_CHUNKS);
                segments.put(mergeSegment(ev.target.result, loose, k, slots), k);
                for (const c of loose) chunks.delete(c.index);
                folded += loose.length;
              } catch (err) {
                fail(err);
              }
            };
          }
        } catch (err) {
          fail(err);
        }
      };
      tx.oncomplete = () => resolve();
      tx.onerror = (e) => e.preventDefault?.();
      tx.onabort = () => reject(tx.error ?? new DOMException('compaction aborted', 'AbortError'));
    });
    this.stats.compactions++;
    // Every loose record the transaction saw was folded (or lay past the end, which writes
    // delete). A write queued behind it completes in a later task, after this line, and
    // adds its chunks again.
    this.loose.clear();
    return folded;
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
      for (const name of STORES) for (const [key, value] of stored[name]) tx.objectStore(name).put(value, key);
    });
    copy.close();
    await txDone(await this._open(), 'readwrite', (tx) => {
      for (const name of STORES) tx.objectStore(name).clear();
    });
    this.loose = new Set();
    this.live = 0;
    return { movedTo };
  }

  /** Every record as stored, whatever it holds (quarantine copies damaged data too). */
  async _readRaw() {
    const db = await this._open();
    const out = { chunks: [], segments: [], meta: [] };
    await txDone(db, 'readonly', (tx) => {
      for (const name of STORES) {
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
