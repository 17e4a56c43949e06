/**
 * LogStore -- the page store shared by FileStore (Node) and OpfsStore (service worker):
 * a snapshot, an append-only log of change records, and a manifest naming which
 * snapshot and log are current. The backends only supply a tiny file API (see the
 * `FileBackend` typedef below); everything about atomicity is decided here.
 *
 * Files of one store, for generation g:
 *   manifest        {"format":1,"generation":g}            written atomically (see below)
 *   snapshot-g      one record holding every live chunk    absent for g = 0
 *   log-g           the change records since snapshot-g    (OpfsStore: one file per record)
 *
 * A record (little-endian) is a 16-byte header and a payload:
 *   u32 magic 'BGL1', u32 payload length, u32 CRC-32 of the payload, u32 kind (1 delta, 2 snapshot)
 *   payload: f64 file size, u32 chunk size, u32 n, n x {u32 index, u32 chunk crc}, n x chunk bytes
 *
 * Why a commit is atomic:
 *  - A flush is ONE record appended to the log and made durable (fsync; OPFS close()).
 *    The flush resolves only after that, so an acknowledged record is whole on disk.
 *  - A crash during the append leaves a torn record at the very end: short, or its CRC
 *    does not match. Replay stops there and the tail is cut off before the next append
 *    (appends are positional, at the end of the last good record, so garbage can never
 *    sit in front of a new record). A record that fails its CRC but is followed by
 *    more data is not a torn tail: that is damage, and load() throws `storage-corrupt`.
 *  - Compaction writes the whole image as snapshot-(g+1) (a new file, made durable),
 *    then switches the manifest to g+1. The manifest is replaced atomically (FileStore:
 *    write manifest.tmp, fsync, rename, fsync the directory; OPFS: createWritable()
 *    writes a swap file that replaces the file on close()). Before the switch the old
 *    generation is intact and complete; after it the new one is. Files of any other
 *    generation are leftovers and are removed at the next open.
 *  - Every chunk also carries its own CRC, which the engine verifies when it loads the
 *    image (bgs_image_load), independent of the record CRC.
 */
import { BgsyncError } from '../../web/BgsyncError.js';

const MAGIC = 0x314c4742; // 'BGL1'
const HEADER = 16;
export const KIND_DELTA = 1;
export const KIND_SNAPSHOT = 2;

/**
 * @typedef {object} FileBackend
 * @property {(name: string) => Promise<Uint8Array|null>} read   whole file, null when absent
 * @property {(name: string, bytes: Uint8Array) => Promise<void>} writeAtomic  replaces a file durably and atomically
 * @property {(name: string) => Promise<void>} remove             absent is fine
 * @property {() => Promise<string[]>} list                        file names of the store
 * @property {(gen: number) => Promise<Uint8Array[]>} readLog      the log's segments, in order
 * @property {(gen: number, bytes: Uint8Array) => Promise<void>} appendLog  durable append of one record
 * @property {(gen: number, segment: number, validBytes: number) => Promise<void>} cutLog  drops a torn tail
 * @property {() => Promise<string>} quarantine   moves every file aside, returns where
 * @property {boolean} [wholeSegments]  each log segment is written whole and atomically (OPFS):
 *   a crash can leave only an EMPTY last segment, so a non-empty one that does not verify
 *   is damage (`storage-corrupt`), never a torn append to be dropped
 * @property {() => Promise<void>} [close]
 */

/** CRC-32 (IEEE), the same as bgs_crc32 in core/src/image.c: must match. */
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let k = 0; k < 256; k++) {
    let v = k;
    for (let j = 0; j < 8; j++) v = v & 1 ? 0xedb88320 ^ (v >>> 1) : v >>> 1;
    t[k] = v >>> 0;
  }
  return t;
})();

export function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One record for `changes` ({size, chunkSize, chunks: [{index, crc, data}]}). */
export function encodeRecord(kind, changes) {
  const chunkSize = changes.chunkSize ?? 4096;
  const n = changes.chunks.length;
  const payloadLength = 16 + n * 8 + n * chunkSize;
  const out = new Uint8Array(HEADER + payloadLength);
  const dv = new DataView(out.buffer);
  const p = HEADER;
  dv.setFloat64(p, changes.size, true);
  dv.setUint32(p + 8, chunkSize, true);
  dv.setUint32(p + 12, n, true);
  let data = p + 16 + n * 8;
  changes.chunks.forEach((c, i) => {
    if (c.data.length !== chunkSize) throw new TypeError('a chunk must be exactly chunkSize bytes');
    dv.setUint32(p + 16 + i * 8, c.index, true);
    dv.setUint32(p + 16 + i * 8 + 4, c.crc >>> 0, true);
    out.set(c.data, data);
    data += chunkSize;
  });
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, payloadLength, true);
  dv.setUint32(8, crc32(out.subarray(HEADER)), true);
  dv.setUint32(12, kind, true);
  return out;
}

/**
 * Reads the records of buf. Returns {records, validBytes, torn} where torn says the
 * bytes after validBytes are an incomplete last record. Throws storage-corrupt when a
 * damaged record is followed by more data (not a tail), or a field is impossible.
 */
export function decodeRecords(buf, what) {
  const records = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER) return { records, validBytes: off, torn: true };
    const magic = dv.getUint32(off, true);
    const len = dv.getUint32(off + 4, true);
    const crc = dv.getUint32(off + 8, true);
    const kind = dv.getUint32(off + 12, true);
    const end = off + HEADER + len;
    if (allZero(buf, off)) return { records, validBytes: off, torn: true }; // a crash can leave zeroed blocks
    if (end > buf.length) {
      // Runs past the end: only the last record can be torn like this.
      if (magic === MAGIC || magic === 0) return { records, validBytes: off, torn: true };
      throw corrupt(`${what}: bad record header at byte ${off}`);
    }
    const payload = buf.subarray(off + HEADER, end);
    if (magic !== MAGIC || crc32(payload) !== crc) {
      if (end === buf.length) return { records, validBytes: off, torn: true };
      throw corrupt(`${what}: record at byte ${off} fails its checksum and is not the last`);
    }
    records.push({ kind, ...decodePayload(payload, what) });
    off = end;
  }
  return { records, validBytes: off, torn: false };
}

function allZero(buf, from) {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

function decodePayload(p, what) {
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const size = dv.getFloat64(0, true);
  const chunkSize = dv.getUint32(8, true);
  const n = dv.getUint32(12, true);
  if (!Number.isSafeInteger(size) || size < 0 || chunkSize === 0 || p.length !== 16 + n * (8 + chunkSize)) {
    throw corrupt(`${what}: record fields are inconsistent`);
  }
  const chunks = [];
  let data = 16 + n * 8;
  for (let i = 0; i < n; i++) {
    chunks.push({
      index: dv.getUint32(16 + i * 8, true),
      crc: dv.getUint32(16 + i * 8 + 4, true),
      data: p.subarray(data, data + chunkSize),
    });
    data += chunkSize;
  }
  return { size, chunkSize, chunks };
}

function corrupt(detail) {
  return new BgsyncError('storage-corrupt', detail);
}

/** Applies one record to an image map (index -> chunk) and returns the new size. */
function applyRecord(image, rec) {
  if (rec.kind === KIND_SNAPSHOT) image.clear();
  for (const c of rec.chunks) image.set(c.index, c);
  const live = Math.ceil(rec.size / rec.chunkSize);
  for (const index of image.keys()) if (index >= live) image.delete(index);
  return rec.size;
}

export class LogStore {
  /**
   * @param {FileBackend} backend
   * @param {{compactMinBytes?: number, compactMaxSegments?: number}} [options]
   *   compaction runs when the log is larger than both compactMinBytes (default 4 MiB)
   *   and the snapshot, or has more than compactMaxSegments records (default 512).
   */
  constructor(backend, { compactMinBytes = 4 * 1024 * 1024, compactMaxSegments = 512 } = {}) {
    this.backend = backend;
    this.compactMinBytes = compactMinBytes;
    this.compactMaxSegments = compactMaxSegments;
    this.generation = null; // null until load() or the first write
    this.logBytes = 0;
    this.logRecords = 0;
    this.snapshotBytes = 0;
    this.stats = { appends: 0, compactions: 0, failedCompactions: 0, tornTails: 0 };
  }

  async _readManifest() {
    const bytes = await this.backend.read('manifest');
    if (bytes === null) return null;
    let m;
    try {
      m = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      throw corrupt('manifest is not JSON');
    }
    if (!m || m.format !== 1 || !Number.isSafeInteger(m.generation) || m.generation < 0) {
      throw corrupt('manifest has an unknown format');
    }
    return m;
  }

  async _writeManifest(generation) {
    const text = JSON.stringify({ format: 1, generation });
    await this.backend.writeAtomic('manifest', new TextEncoder().encode(text));
  }

  /** Reads snapshot + log of the current generation into {size, image, ...}; repairs a torn tail. */
  async _readState({ repair }) {
    const m = await this._readManifest();
    if (m === null) return null;
    const g = m.generation;
    const image = new Map();
    let size = 0;
    let snapshotBytes = 0;
    if (g > 0) {
      const snap = await this.backend.read(`snapshot-${g}`);
      if (snap === null) throw corrupt(`snapshot-${g} is missing`);
      const { records, torn } = decodeRecords(snap, `snapshot-${g}`);
      if (torn || records.length !== 1 || records[0].kind !== KIND_SNAPSHOT) {
        throw corrupt(`snapshot-${g} is incomplete`);
      }
      size = applyRecord(image, records[0]);
      snapshotBytes = snap.length;
    }
    const segments = await this.backend.readLog(g);
    let logBytes = 0;
    let logRecords = 0;
    for (let s = 0; s < segments.length; s++) {
      const { records, validBytes, torn } = decodeRecords(segments[s], `log-${g}`);
      if (torn) {
        if (s !== segments.length - 1) throw corrupt(`log-${g}: a damaged record is not the last`);
        // Dropping it would lose an acknowledged flush without a word.
        if (this.backend.wholeSegments && segments[s].length > 0) {
          throw corrupt(`log-${g}: the last segment fails its checksum, and segments are written whole`);
        }
        this.stats.tornTails++;
        if (repair) await this.backend.cutLog(g, s, validBytes);
      }
      for (const rec of records) {
        if (rec.kind !== KIND_DELTA) throw corrupt(`log-${g}: unexpected record kind ${rec.kind}`);
        size = applyRecord(image, rec);
      }
      logBytes += validBytes;
      logRecords += records.length;
    }
    return { generation: g, size, image, snapshotBytes, logBytes, logRecords };
  }

  /** {size, chunks: [{index, data, crc}]} of the last durable commit, or null for a new store. */
  async load() {
    const state = await this._readState({ repair: true });
    if (state === null) {
      this.generation = null;
      return null;
    }
    this.generation = state.generation;
    if (state.generation === 0 && state.logRecords === 0) return null; // a manifest, nothing stored yet
    this.snapshotBytes = state.snapshotBytes;
    this.logBytes = state.logBytes;
    this.logRecords = state.logRecords;
    await this._removeLeftovers(state.generation);
    const chunks = [...state.image.values()]
      .sort((a, b) => a.index - b.index)
      .map((c) => ({ index: c.index, data: c.data.slice(), crc: c.crc }));
    return { size: state.size, chunks };
  }

  async _removeLeftovers(g) {
    const keep = new Set(['manifest', `snapshot-${g}`]);
    for (const name of await this.backend.list()) {
      const m = /^(snapshot|log)-(\d+)/.exec(name);
      if (m && Number(m[2]) !== g && !keep.has(name)) await this.backend.remove(name);
      if (name.endsWith('.tmp')) await this.backend.remove(name);
    }
  }

  /** Makes one flush durable: a single record appended to the log. */
  async write(changes) {
    if (this.generation === null) {
      // A new store: the manifest exists before the first record it points to.
      const existing = await this._readManifest();
      if (!existing) await this._writeManifest(0);
      this.generation = existing ? existing.generation : 0;
    }
    const record = encodeRecord(KIND_DELTA, changes);
    await this.backend.appendLog(this.generation, record);
    this.logBytes += record.length;
    this.logRecords++;
    this.stats.appends++;
    if (this._shouldCompact()) {
      try {
        await this.compact();
      } catch {
        // The record above is durable whatever happens here; the next write tries again.
        this.stats.failedCompactions++;
      }
    }
  }

  _shouldCompact() {
    return (
      (this.logBytes > this.compactMinBytes && this.logBytes > this.snapshotBytes) ||
      this.logRecords > this.compactMaxSegments
    );
  }

  /** Writes the current state as the next generation's snapshot and switches to it. */
  async compact() {
    const state = await this._readState({ repair: false });
    if (state === null) return;
    const g = state.generation + 1;
    const chunks = [...state.image.values()].sort((a, b) => a.index - b.index);
    const snap = encodeRecord(KIND_SNAPSHOT, { size: state.size, chunkSize: chunks[0]?.data.length ?? 4096, chunks });
    await this.backend.writeAtomic(`snapshot-${g}`, snap);
    try {
      await this._writeManifest(g); // the switch
    } catch (err) {
      // Whether the switch happened is unknown (the rename may be done and only the fsync
      // of the directory have failed). Appending to the old generation's log after a switch
      // would write records that the next open ignores and removes, so the next write
      // reads the manifest again before it appends.
      this.generation = null;
      throw err;
    }
    this.generation = g;
    this.snapshotBytes = snap.length;
    this.logBytes = 0;
    this.logRecords = 0;
    this.stats.compactions++;
    await this._removeLeftovers(g);
  }

  /** Moves the damaged store aside (kept for inspection) and leaves an empty one. */
  async quarantine() {
    const movedTo = await this.backend.quarantine();
    this.generation = null;
    this.logBytes = 0;
    this.logRecords = 0;
    this.snapshotBytes = 0;
    return { movedTo };
  }

  async close() {
    await this.backend.close?.();
  }
}
