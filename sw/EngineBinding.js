/**
 * EngineBinding -- the only code that touches the engine module. It wraps each C
 * function once, converts strings and bytes, frees what it allocated in `finally`,
 * copies every view of wasm memory at once (memory growth detaches views) and turns a
 * result code into a thrown BgsyncError.
 *
 * Everything here is synchronous; durability (flushes) is Engine.js's job.
 */
import { BgsyncError } from '../web/BgsyncError.js';

const PTR = 4; // wasm32 pointer size
const CHUNK_SIZE = 4096; // BGS_CHUNK_SIZE (bgsync.h)

export class EngineBinding {
  /** @param {object} module  the instantiated engine module (engineInstance.js) */
  constructor(module) {
    this.m = module;
    this.encoder = new TextEncoder();
    this.decoder = new TextDecoder();
    this.codes = new Map(); // rc -> kebab code, read from the engine itself
    for (let rc = 0; ; rc++) {
      const p = module._bgs_errname(rc);
      if (!p) break;
      this.codes.set(rc, module.UTF8ToString(p));
    }
  }

  /** Kebab code names of every engine result, in order (for tests). */
  resultCodes() {
    return [...this.codes.values()];
  }

  _fail(rc, eng) {
    const code = this.codes.get(rc) ?? 'internal-error';
    const detail = eng ? this.m.UTF8ToString(this.m._bgs_errmsg(eng)) : undefined;
    return new BgsyncError(code, detail);
  }

  _cstr(s) {
    const bytes = this.encoder.encode(s);
    const p = this.m._malloc(bytes.length + 1);
    if (!p) throw new BgsyncError('out-of-memory');
    this.m.HEAPU8.set(bytes, p);
    this.m.HEAPU8[p + bytes.length] = 0;
    return p;
  }

  _bytes(u8) {
    if (!u8 || u8.length === 0) return 0;
    const p = this.m._malloc(u8.length);
    if (!p) throw new BgsyncError('out-of-memory');
    this.m.HEAPU8.set(u8, p);
    return p;
  }

  _outs(n) {
    const p = this.m._malloc(PTR * n);
    if (!p) throw new BgsyncError('out-of-memory');
    this.m.HEAPU32.fill(0, p >> 2, (p >> 2) + n);
    return p;
  }

  /** Reads and frees a char** result that the engine allocated. */
  _takeJson(pOut) {
    const p = this.m.HEAPU32[pOut >> 2];
    if (!p) return null;
    try {
      return JSON.parse(this.m.UTF8ToString(p));
    } finally {
      this.m._bgs_free(p);
    }
  }

  /**
   * Calls fn(...cArgs, outPtr) where cArgs converts strings/bytes, and returns the JSON
   * result. Frees every allocation whatever happens.
   */
  _call(eng, fnName, args, { out = true } = {}) {
    const allocs = [];
    try {
      const cArgs = args.map((a) => {
        if (typeof a === 'string') {
          const p = this._cstr(a);
          allocs.push(p);
          return p;
        }
        if (a instanceof Uint8Array) {
          const p = this._bytes(a);
          if (p) allocs.push(p);
          return p;
        }
        return a ?? 0;
      });
      let pOut = 0;
      if (out) {
        pOut = this._outs(1);
        allocs.push(pOut);
        cArgs.push(pOut);
      }
      const rc = this.m[fnName](...cArgs);
      if (rc !== 0) throw this._fail(rc, eng);
      return out ? this._takeJson(pOut) : undefined;
    } finally {
      for (const p of allocs) this.m._free(p);
    }
  }

  /**
   * Opens an engine over stored chunks. `stored` is null (a new store) or
   * {size, chunks: [{index, data: Uint8Array, crc}]}. Returns the engine pointer.
   */
  open(stored, { installId, seed = 0, leaseMs = 0, now }) {
    const m = this.m;
    const pp = this._outs(1);
    let img = 0;
    try {
      let rc = m._bgs_image_new(pp);
      if (rc !== 0) throw this._fail(rc, 0);
      img = m.HEAPU32[pp >> 2];
      if (stored) {
        for (const c of stored.chunks) {
          const p = this._bytes(c.data);
          try {
            rc = m._bgs_image_load(img, c.index, p, c.data.length, c.crc >>> 0);
          } finally {
            if (p) m._free(p);
          }
          if (rc !== 0) throw this._fail(rc, 0);
        }
        rc = m._bgs_wasm_image_set_size(img, stored.size);
        if (rc !== 0) throw this._fail(rc, 0);
      }
      const pId = this._cstr(installId ?? 'bgs');
      try {
        // bgs_open takes the image whatever happens.
        const imgOwned = img;
        img = 0;
        rc = m._bgs_wasm_open(imgOwned, pId, seed, leaseMs, now, pp);
      } finally {
        m._free(pId);
      }
      if (rc !== 0) throw this._fail(rc, 0);
      return m.HEAPU32[pp >> 2];
    } finally {
      if (img) m._bgs_image_free(img);
      m._free(pp);
    }
  }

  close(eng) {
    this.m._bgs_close(eng);
  }

  /** The chunks changed since the last take: {size, chunks: [{index, crc, data}]}. */
  takeChanges(eng) {
    const m = this.m;
    // [view list, count, size (f64)]
    const pp = this._outs(4);
    try {
      const rc = m._bgs_wasm_changes_view(eng, pp, pp + PTR, pp + 2 * PTR);
      if (rc !== 0) throw this._fail(rc, eng);
      const u32 = m.HEAPU32;
      const pView = u32[pp >> 2];
      const n = u32[(pp >> 2) + 1];
      const size = new DataView(m.HEAPU8.buffer).getFloat64(pp + 2 * PTR, true);
      const chunks = [];
      // Views of the engine's own pages, valid until its next call: each is copied out
      // now (a later call may grow memory and detach the heap's buffer anyway).
      for (let i = 0, v = pView >> 2; i < n; i++, v += 3) {
        const p = u32[v + 2];
        chunks.push({ index: u32[v], crc: u32[v + 1], data: m.HEAPU8.slice(p, p + CHUNK_SIZE) });
      }
      return { chunkSize: CHUNK_SIZE, size, chunks };
    } finally {
      m._free(pp);
    }
  }

  configureQueue(eng, config, now) {
    return this._call(eng, '_bgs_wasm_queue_configure', [eng, JSON.stringify(config), now], { out: false });
  }

  /** {maxItems, maxBytes, maxBodyBytes} of a configured queue (0 = unbounded). */
  queueLimits(eng, queue) {
    return this._call(eng, '_bgs_queue_limits', [eng, queue]);
  }

  enqueue(eng, meta, body, now) {
    const bytes = body ?? new Uint8Array(0);
    return this._call(eng, '_bgs_wasm_enqueue', [eng, JSON.stringify(meta), bytes, bytes.length, now]);
  }

  claim(eng, queue, max, now) {
    return this._call(eng, '_bgs_wasm_claim', [eng, queue, max, now]);
  }

  /** Leases item `id` if a claim could hand it out now: [item] or []. */
  claimItem(eng, queue, id, now) {
    return this._call(eng, '_bgs_wasm_claim_item', [eng, queue, id, now]);
  }

  /** What the next claim of `queue` hands out first: {item|null, validUntil|null} (read-only). */
  ahead(eng, queue, now) {
    return this._call(eng, '_bgs_wasm_ahead', [eng, queue, now]);
  }

  body(eng, id) {
    const m = this.m;
    const pp = this._outs(2);
    try {
      const rc = m._bgs_wasm_body(eng, id, pp, pp + PTR);
      if (rc !== 0) throw this._fail(rc, eng);
      const p = m.HEAPU32[pp >> 2];
      const n = m.HEAPU32[(pp >> 2) + 1];
      if (!p) return new Uint8Array(0);
      try {
        return m.HEAPU8.slice(p, p + n);
      } finally {
        m._bgs_free(p);
      }
    } finally {
      m._free(pp);
    }
  }

  outcome(eng, report, body, now) {
    const bytes = body ?? new Uint8Array(0);
    return this._call(eng, '_bgs_wasm_outcome', [eng, JSON.stringify(report), bytes, bytes.length, now]);
  }

  status(eng, queue, now) {
    // A NULL queue means all queues: pass 0 rather than a string.
    const allocs = [];
    const m = this.m;
    const pOut = this._outs(1);
    try {
      let pQ = 0;
      if (queue != null) {
        pQ = this._cstr(queue);
        allocs.push(pQ);
      }
      const rc = m._bgs_wasm_status(eng, pQ, now, pOut);
      if (rc !== 0) throw this._fail(rc, eng);
      return this._takeJson(pOut);
    } finally {
      for (const p of allocs) m._free(p);
      m._free(pOut);
    }
  }

  items(eng, filter) {
    return this._call(eng, '_bgs_items', [eng, JSON.stringify(filter ?? {})]);
  }

  // ---- decisions (issue 3) ----

  /** The attempt log, oldest first: filter {id?, limit?}. */
  attempts(eng, filter) {
    return this._call(eng, '_bgs_attempts', [eng, JSON.stringify(filter ?? {})]);
  }

  deadRetry(eng, id, now) {
    return this._call(eng, '_bgs_wasm_dead_retry', [eng, id, now], { out: false });
  }

  deadDiscard(eng, id, now) {
    return this._call(eng, '_bgs_wasm_dead_discard', [eng, id, now], { out: false });
  }

  /** Items waiting for credentials (queue null = all) back to pending: {released}. */
  authRelease(eng, queue, now) {
    return this._call(eng, '_bgs_wasm_auth_release', [eng, queue ?? null, now]);
  }

  /** {method, url, headers, items, body: Uint8Array} -- body empty when no item was ready. */
  claimBatch(eng, queue, now) {
    const m = this.m;
    const pp = this._outs(3);
    const pQ = this._cstr(queue);
    try {
      const rc = m._bgs_wasm_claim_batch(eng, pQ, now, pp, pp + PTR, pp + 2 * PTR);
      if (rc !== 0) throw this._fail(rc, eng);
      const desc = this._takeJson(pp);
      const p = m.HEAPU32[(pp >> 2) + 1];
      const n = m.HEAPU32[(pp >> 2) + 2];
      let body = new Uint8Array(0);
      if (p) {
        try {
          body = m.HEAPU8.slice(p, p + n);
        } finally {
          m._bgs_free(p);
        }
      }
      return { ...desc, body };
    } finally {
      m._free(pQ);
      m._free(pp);
    }
  }

  batchOutcome(eng, report, body, now) {
    const bytes = body ?? new Uint8Array(0);
    return this._call(eng, '_bgs_wasm_batch_outcome', [eng, JSON.stringify(report), bytes, bytes.length, now]);
  }

  // ---- conflicts (issue 4; protocol in core/include/bgsync.h) ----

  /** The conflicts inbox: filter {state: 'open'|'resolved'|'all', queue, entity, itemId, limit}. */
  conflicts(eng, filter) {
    return this._call(eng, '_bgs_conflicts', [eng, JSON.stringify(filter ?? {})]);
  }

  /**
   * Hands in the remote document (an object, or null when the resource is gone) and its
   * version (the ETag) for conflict `id`.
   */
  conflictRemote(eng, id, doc, version, now) {
    const zDoc = doc == null ? null : typeof doc === 'string' ? doc : JSON.stringify(doc);
    return this._call(eng, '_bgs_wasm_conflict_remote', [eng, id, zDoc, version ?? null, now]);
  }

  /** Resolves conflict `id`: {keep: 'local'|'remote'} or {document: {...}}, optional version. */
  conflictResolve(eng, id, resolution, now) {
    return this._call(eng, '_bgs_wasm_conflict_resolve', [eng, id, JSON.stringify(resolution), now]);
  }

  /** The three-way merge on its own: {merged, conflicts}. Documents as objects or JSON text. */
  merge3(eng, base, local, remote, rules) {
    const text = (d) => (typeof d === 'string' ? d : JSON.stringify(d));
    return this._call(eng, '_bgs_merge3', [
      eng,
      text(base),
      text(local),
      text(remote),
      rules == null ? null : JSON.stringify(rules),
    ]);
  }
}
