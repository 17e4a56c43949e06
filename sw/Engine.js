/**
 * Engine -- the engine as promises, durable through a page store.
 *
 * Every call that changes state runs synchronously in the engine (one SQLite
 * transaction) and then waits for the flush that writes its changed chunks to the store.
 * Group commit: one flush is in flight at a time; calls made meanwhile share the next
 * one, so a burst of calls costs a few store transactions, not one each.
 *
 * If a flush fails, every call it covered rejects, and so does every call made after it
 * (their changes sit on top of the failed ones); the engine then reopens from the
 * store's last durable state. What resolved is stored; what rejected left nothing.
 * Reads (status, items, body) answer from memory at once.
 *
 * Open verifies what it loads (verifyStored below, then every chunk's CRC in
 * bgs_image_load, then SQLite's own header checks in bgs_open). A damaged store fails
 * with BgsyncError 'storage-corrupt' — or, with `onCorrupt: 'quarantine'`, is moved
 * aside intact (store.quarantine()), a fresh store is started and the move is reported
 * (engine.recovery, options.onRecovery): never a silently empty queue.
 */
import { BgsyncError } from '../web/BgsyncError.js';
import { EngineBinding } from './EngineBinding.js';
import { bodySize } from './BlobStore.js';
import { sameTickets, takeTickets } from './HeadStart.js';

export class Engine {
  /**
   * @param {object} module  the loaded engine module (loadEngineModule)
   * @param {object} store   a page store (MemoryStore, IndexedDbStore, FileStore, ...)
   * @param {{now?: () => number, seed?: number, leaseMs?: number,
   *          installId?: string, queues?: object[],
   *          onCorrupt?: 'throw'|'quarantine', onRecovery?: (report: object) => void,
   *          verify?: 'basic'|'deep'}} [options]
   *   onCorrupt: what open does with a damaged store ('throw', the default, rejects with
   *   'storage-corrupt'; 'quarantine' keeps it aside and starts fresh, see recovery).
   *   verify: 'deep' also reads every item row at open (slower; finds damaged b-tree pages).
   *   blobStore: a BlobStore (sw/BlobStore.js) for large bodies; with it, bodies over
   *   largeBodyBytes (default 64 KiB) and every Blob live outside the database, and open
   *   collects blobs that no unfinished item references.
   *   headStartQueues: queues whose head-start tickets each flush stores (HeadStart.js),
   *   when the store has readAhead().
   */
  static async open(module, store, options = {}) {
    const engine = new Engine(new EngineBinding(module), store, options);
    // Listed beside the load (nothing of this engine's can be written before it opens, so
    // the listing holds only blobs of earlier lives; later ones are not judged).
    const blobListing = engine.blobs ? engine.blobs.list() : null;
    blobListing?.catch(() => {});
    try {
      await engine._load();
      // In memory, as after a reload: configurations are applied anew at every open, so
      // they need not be durable before the first claim, and a flush here would put one
      // more IndexedDB write in front of a cold start's first request. A configuration
      // change reaches the store with the next flush.
      for (const q of options.queues ?? []) {
        engine.binding.configureQueue(engine.eng, q, engine.now());
        engine.queueConfigs.set(q?.name, q);
      }
      // Not after a quarantine: the listing predates the move, and a fresh store has no orphans.
      if (blobListing && !engine._blobsSetAside) await engine.collectBlobs(await blobListing);
    } catch (err) {
      // Give the store (and its lock, see StoreLock.js) back: a later open may retry.
      if (engine.eng) engine.binding.close(engine.eng);
      engine.eng = 0;
      engine._closed = true;
      await Promise.resolve(store.close?.()).catch(() => {});
      throw err;
    }
    return engine;
  }

  constructor(binding, store, options) {
    this.binding = binding;
    this.store = store;
    this.now = options.now ?? (() => Date.now());
    this.options = options;
    this.eng = 0;
    this.queueConfigs = new Map(); // re-applied after a reload
    this._waiting = []; // {resolve, reject, value} of calls not yet covered by a flush
    this._flushing = null; // the flush in flight
    this._reloading = null;
    this._closed = false;
    this.stats = { flushes: 0, chunksWritten: 0, failedFlushes: 0, reloads: 0 };
    this.seed = options.seed ?? Math.floor(Math.random() * 2 ** 52);
    this.recovery = null; // {code, detail, movedTo, at, blobs...} when open quarantined a damaged store (_quarantineBlobs)
    this._broken = null; // the error of a reload that failed; the next call retries it
    this.blobs = options.blobStore ?? null;
    this._blobsSetAside = false; // open moved the blobs with a quarantined store: no collection
    this.largeBodyBytes = options.largeBodyBytes ?? 64 * 1024;
    this._claimedBodies = new Map(); // item id -> external body of an item in flight (for body())
    this._undurable = new Map(); // item id -> enqueues touching it whose flush is not done (claim early)
    // Queues whose head-start tickets go with every flush (HeadStart.js); the store must
    // be able to give them back (readAhead).
    this._headQueues = typeof store.readAhead === 'function' ? (options.headStartQueues ?? []) : [];
    this._ticketsWritten = undefined; // what the store holds; undefined: not known
  }

  async _load() {
    let stored;
    try {
      stored = await this._openStored();
    } catch (err) {
      if (err?.code !== 'storage-corrupt' || this.options.onCorrupt !== 'quarantine') throw err;
      const { movedTo } = await this.store.quarantine();
      const at = this.now();
      this.recovery = { code: 'storage-corrupt', detail: err.detail ?? String(err.message), movedTo, at, ...(await this._quarantineBlobs(movedTo)) };
      this.options.onRecovery?.(this.recovery);
      stored = await this._openStored();
    }
    if (!stored) await this._mutate(() => undefined); // the new schema is durable before use
  }

  /**
   * The large bodies go with the damaged store (BlobStore.quarantine), into the blob store
   * named with the page copy's suffix (`<name>.corrupt-<time>`), so an app finds both: the
   * fresh store references none of them, and the collection would delete every one.
   * Returns what recovery adds: blobsMovedTo (null when there were none) and blobsMoved;
   * after a failure part way also blobsLeft (how many stay in the live store, where the
   * next open's collection moves them on, see collectBlobs) and blobsError.
   */
  async _quarantineBlobs(movedTo) {
    if (!this.blobs) return {};
    this._blobsSetAside = true;
    // A store object without quarantine() (a custom one) keeps them, until a later collection.
    if (typeof this.blobs.quarantine !== 'function') return { blobsMovedTo: null, blobsMoved: 0 };
    // Memory's movedTo carries no time: the engine clock names that sibling.
    const tag = /\.(corrupt-\d+)$/.exec(String(movedTo))?.[1] ?? `corrupt-${this.now()}`;
    let report;
    try {
      report = await this.blobs.quarantine(tag);
    } catch (err) {
      report = { movedTo: null, moved: 0, left: null, error: err }; // e.g. the listing failed: nothing moved
    }
    const out = { blobsMovedTo: report.movedTo, blobsMoved: report.moved };
    if (report.error) {
      out.blobsLeft = report.left?.length ?? null;
      out.blobsError = String(report.error?.message ?? report.error);
    }
    return out;
  }

  /** Loads and verifies the store and opens the engine over it; returns what was loaded. */
  async _openStored() {
    let stored;
    try {
      // The first load may have been started by the caller, beside the module's compile.
      const early = this.options.initialLoad;
      this.options.initialLoad = null;
      stored = await (early ?? this.store.load());
    } catch (err) {
      throw toStorageError(err);
    }
    verifyStored(stored);
    this.eng = this.binding.open(stored, {
      installId: this.options.installId ?? randomId(),
      seed: this.seed,
      leaseMs: this.options.leaseMs ?? 0,
      now: this.now(),
    });
    this._storedSize = stored ? stored.size : undefined;
    if (stored && this.options.verify === 'deep') {
      try {
        this.binding.items(this.eng, { limit: 2 ** 31 });
      } catch (err) {
        this.binding.close(this.eng);
        this.eng = 0;
        if (err?.code === 'storage-corrupt') throw err;
        throw new BgsyncError('storage-corrupt', `reading every item failed: ${err?.message ?? err}`);
      }
    }
    return stored;
  }

  _check() {
    if (this._closed) throw new BgsyncError('engine-closed');
  }

  /** Runs fn against the engine now, resolves once its changes are durable. */
  async _mutate(fn) {
    this._check();
    if (this._reloading) await this._reloading;
    if (!this.eng) await this._recover();
    const value = fn(this.eng);
    return new Promise((resolve, reject) => {
      this._waiting.push({ resolve, reject, value });
      if (!this._flushing) this._flushing = this._flushLoop();
    });
  }

  async _flushLoop() {
    // Let calls made in the same task join this flush.
    await Promise.resolve();
    while (this._waiting.length > 0) {
      const batch = this._waiting;
      this._waiting = [];
      let changes;
      try {
        changes = this.binding.takeChanges(this.eng);
        if (changes.chunks.length > 0 || changes.size !== this._storedSize) {
          // The head start's tickets, computed from the state these changes make durable
          // and written in the same transaction (HeadStart.js); only when they changed.
          const tickets = this._ticketsToWrite();
          if (tickets !== undefined) changes.ahead = tickets;
          try {
            await this.store.write(changes);
          } catch (err) {
            this._ticketsWritten = undefined; // unknown now: the next write stores them again
            throw err;
          }
          if (tickets !== undefined) this._ticketsWritten = tickets;
          this._storedSize = changes.size;
          this.stats.flushes++;
          this.stats.chunksWritten += changes.chunks.length;
        }
      } catch (err) {
        this.stats.failedFlushes++;
        const error = toStorageError(err);
        const later = this._waiting;
        this._waiting = [];
        for (const w of [...batch, ...later]) w.reject(error);
        // A failed reload is kept in _broken; the next call retries it and rejects if it fails.
        await this._recover().catch(() => {});
        continue;
      }
      for (const w of batch) w.resolve(w.value);
    }
    this._flushing = null;
  }

  /** The tickets to store with this flush, or undefined when the stored ones still hold. */
  _ticketsToWrite() {
    if (this._headQueues.length === 0) return undefined;
    const tickets = takeTickets(this.binding, this.eng, this._headQueues, this.now());
    return this._ticketsWritten !== undefined && sameTickets(tickets, this._ticketsWritten) ? undefined : tickets;
  }

  /**
   * Reopens from the last durable state after a failed flush. If that fails too (the
   * store is unreachable), the engine stays closed inside and the next call retries;
   * until one succeeds every call rejects with the reload's error.
   */
  async _recover() {
    if (!this._reloading) {
      this._reloading = this._reload().then(
        () => {
          this._broken = null;
        },
        (err) => {
          this._broken = toStorageError(err);
        },
      );
    }
    await this._reloading;
    this._reloading = null;
    if (!this.eng) throw this._broken ?? new BgsyncError('storage-failed', 'the engine could not reload');
  }

  async _reload() {
    if (this.eng) this.binding.close(this.eng);
    this.eng = 0;
    this.stats.reloads++;
    // Changes taken from the failed engine are gone with it; the durable state is the truth.
    // A store that never stored anything reopens empty: its fresh schema stays dirty in
    // memory and reaches the store with the next flush (discarding it would store pages
    // that point to pages never written).
    await this._openStored();
    for (const cfg of this.queueConfigs.values()) this.binding.configureQueue(this.eng, cfg, this.now());
    // Queue configurations re-applied in memory; they reach the store with the next flush.
  }

  /** Waits for every flush in progress (tests, shutdown). */
  async settle() {
    while (this._flushing || this._reloading) await (this._flushing ?? this._reloading);
  }

  configureQueue(config) {
    return this._mutate((eng) => {
      this.binding.configureQueue(eng, config, this.now());
      // Only a configuration the engine took is re-applied after a reload: a rejected one
      // kept here would make every later reload fail.
      this.queueConfigs.set(config?.name, config);
    });
  }

  /** {maxItems, maxBytes, maxBodyBytes} of a configured queue, as the engine applies them. */
  async queueLimits(queue) {
    this._check();
    // After a failed flush the engine reopens from the store first (as _mutate does).
    if (this._reloading) await this._reloading;
    if (!this.eng) await this._recover();
    return this.binding.queueLimits(this.eng, queue);
  }

  /** @returns {Promise<{id: number, key: string}>} once the item is durable */
  enqueue(meta, body) {
    // A batch request is built from the items' bytes inside the engine (bgs_claim_batch),
    // which has no access to the blob store: batched queues keep their bodies inline.
    const batched = this.queueConfigs.get(meta?.queue)?.batch;
    if (this.blobs && !batched && isLarge(body, this.largeBodyBytes)) return this._enqueueExternal(meta, body);
    let result;
    const p = this._mutate((eng) => {
      result = this.binding.enqueue(eng, meta, toBytes(body), this.now());
      return result;
    });
    return this._trackEnqueue(p, result);
  }

  /**
   * A large body: the blob first (durable), then the item that points to it (durable
   * with its flush); if the item is not stored, the blob goes again. See BlobStore.js.
   */
  async _enqueueExternal(meta, body) {
    this._check();
    if (meta && typeof meta === 'object' && 'bodyRef' in meta) {
      throw new BgsyncError('invalid-argument', 'bodyRef is set by the engine, not by callers');
    }
    const ref = { id: `b-${randomId()}`, size: bodySize(body) };
    // Refused before it is written: storing megabytes durably only to delete them again
    // made a page's call for an oversized body outlast its timeout. The engine's own check
    // (at enqueue) stays the authority; this one reads the same limit.
    if (this.eng && typeof meta?.queue === 'string') {
      const { maxBodyBytes } = this.binding.queueLimits(this.eng, meta.queue);
      if (ref.size > maxBodyBytes) {
        throw new BgsyncError('body-too-large', `body of ${ref.size} bytes; queue '${meta.queue}' allows ${maxBodyBytes}`);
      }
    }
    try {
      await this.blobs.put(ref.id, body);
    } catch (err) {
      // A full disk while writing the body is the same `storage-quota` as during a flush
      // (the page would otherwise see the browser's bare DOMException as 'internal-error').
      throw toStorageError(err);
    }
    try {
      let result;
      const p = this._mutate((eng) => {
        result = this.binding.enqueue(eng, { ...meta, bodyRef: ref }, new Uint8Array(0), this.now());
        return result;
      });
      return await this._trackEnqueue(p, result);
    } catch (err) {
      await this.blobs.delete(ref.id).catch(() => {}); // left for collectBlobs if this fails
      throw err;
    }
  }

  /**
   * Leases up to `max` ready items; resolves once the leases are durable.
   * With {early: true} it resolves as soon as the leases are taken in memory, and their
   * flush goes on alongside the requests. That is safe for a lease: lost with a failed
   * flush or a killed worker, it only means the item is claimed again later, under the
   * same Idempotency-Key. It is not for an item whose enqueue (or a change coalesced into
   * it) is still being flushed: sending it could deliver a change whose enqueue then
   * fails, so such a claim waits for durability as usual.
   */
  async claim(queue, max = 1, { early = false } = {}) {
    return this._lease((eng) => this.binding.claim(eng, queue, max, this.now()), early);
  }

  /**
   * Leases item `id` of `queue` if a claim could hand it out now (the head start's claim,
   * HeadStart.js): the item, or null. Like claim's `early`: its request is under way.
   */
  async claimItem(queue, id) {
    const [item] = await this._lease((eng) => this.binding.claimItem(eng, queue, id, this.now()), true);
    return item ?? null;
  }

  /** A claim's leases (`lease(eng)` gives the items), resolved as `claim` describes. */
  async _lease(lease, early) {
    let items;
    const durable = this._mutate((eng) => {
      items = lease(eng);
      return items;
    });
    const mustWait = !early || items === undefined || items.some((i) => this._undurable.has(i.id));
    if (mustWait) items = await durable;
    else durable.catch(() => {}); // a failed flush rejects the calls that wait on it and reloads
    await this._fetchExternalBodies(items);
    return items;
  }

  /** Tracks items changed by enqueues whose flush has not finished (see claim's `early`). */
  _trackEnqueue(promise, result) {
    const id = result?.id;
    if (id == null) return promise;
    this._undurable.set(id, (this._undurable.get(id) ?? 0) + 1);
    const done = () => {
      const n = this._undurable.get(id) - 1;
      if (n > 0) this._undurable.set(id, n);
      else this._undurable.delete(id);
    };
    promise.then(done, done);
    return promise;
  }

  /** Loads the external bodies of claimed items, so body(id) can hand them out at once. */
  async _fetchExternalBodies(items) {
    for (const item of items ?? []) {
      if (!item.bodyRef) continue;
      if (!this.blobs) throw new BgsyncError('invalid-state', `item ${item.id} has an external body and no blobStore is configured`);
      const body = await this.blobs.get(item.bodyRef.id);
      if (body === null) throw new BgsyncError('storage-corrupt', `the body of item ${item.id} (${item.bodyRef.id}) is missing`);
      this._claimedBodies.set(item.id, { ref: item.bodyRef.id, body });
    }
  }

  async outcome(report, body) {
    const decision = await this._mutate((eng) => this.binding.outcome(eng, report, toBytes(body), this.now()));
    const claimed = this._claimedBodies.get(decision?.id ?? report?.id);
    if (claimed && decision?.state !== 'inflight') {
      this._claimedBodies.delete(decision.id);
      // Delivered: the bytes are not needed any more (a failure leaves them to collectBlobs).
      if (decision.state === 'done') await this.blobs.delete(claimed.ref).catch(() => {});
    }
    return decision;
  }

  /**
   * The body of an item: bytes, or for an external body of a claimed item the Blob (or
   * bytes) its blob store holds. An external body that is not claimed: use readBody().
   */
  body(id) {
    this._check();
    const claimed = this._claimedBodies.get(id);
    if (claimed) return claimed.body;
    return this.binding.body(this.eng, id);
  }

  /** The body of any item, external ones included (reads the blob store). */
  async readBody(id) {
    this._check();
    const claimed = this._claimedBodies.get(id);
    if (claimed) return claimed.body;
    const ref = this._refOf(id);
    if (!ref) return this.binding.body(this.eng, id);
    return this.blobs.get(ref.id);
  }

  _refOf(id) {
    return this.binding.items(this.eng, { limit: 2 ** 31 }).find((i) => i.id === id)?.bodyRef ?? null;
  }

  /**
   * Removes blobs that no item still waiting to be delivered references: a crash between
   * a blob's write and its item's flush, an item cancelled, discarded or done. Runs at
   * open; returns the ids removed (moved, when a quarantine's move is pending).
   */
  async collectBlobs(listed) {
    if (!this.blobs) return [];
    const stored = listed ?? (await this.blobs.list());
    if (stored.length === 0) return []; // the common case: no listing of every item at open
    const live = new Set();
    for (const item of this.binding.items(this.eng, { limit: 2 ** 31 })) {
      if (item.bodyRef && item.state !== 'done') live.add(item.bodyRef.id);
    }
    const orphans = stored.filter((id) => !live.has(id));
    // A quarantine's move that did not finish (a crash, a failure) left its marker: the
    // damaged store's bodies are among the orphans, and go after it instead of away (with
    // any orphan of this store's own: kept too long rather than lost). A failure again
    // leaves the marker for the next open.
    const tag = typeof this.blobs.pendingQuarantine === 'function' ? await this.blobs.pendingQuarantine() : null;
    if (tag) {
      const { left } = await this.blobs.quarantine(tag, orphans);
      return orphans.filter((id) => !left.includes(id));
    }
    const removed = [];
    for (const id of orphans) {
      await this.blobs.delete(id);
      removed.push(id);
    }
    return removed;
  }

  status(queue) {
    this._check();
    return this.binding.status(this.eng, queue ?? null, this.now());
  }

  items(filter) {
    this._check();
    return this.binding.items(this.eng, filter);
  }

  // ---- decisions (issue 3) ----

  /** The attempt log (time, status, decision, delay), oldest first: filter {id?, limit?}. */
  attempts(filter) {
    this._check();
    return this.binding.attempts(this.eng, filter);
  }

  /** Sends a dead letter again (attempts reset, same key); resolves once durable. */
  deadRetry(id) {
    return this._mutate((eng) => this.binding.deadRetry(eng, id, this.now()));
  }

  /** Removes a dead letter for good. */
  deadDiscard(id) {
    return this._mutate((eng) => this.binding.deadDiscard(eng, id, this.now()));
  }

  /** Fresh credentials: items waiting for them (in `queue`, or all) become pending. */
  authRelease(queue) {
    return this._mutate((eng) => this.binding.authRelease(eng, queue ?? null, this.now()));
  }

  /** Leases up to the queue's batch.maxItems items into one request {method, url, headers, items, body}. */
  claimBatch(queue, { early = false } = {}) {
    // {early: true}: as claim() (the leases need not be durable before the request goes).
    let request;
    const durable = this._mutate((eng) => {
      request = this.binding.claimBatch(eng, queue, this.now());
      return request;
    });
    const mustWait = !early || request === undefined || (request?.items ?? []).some((i) => this._undurable.has(i.id));
    if (mustWait) return durable;
    durable.catch(() => {});
    return Promise.resolve(request);
  }

  /** Applies a batch response: report {items: [{id, attempt}], status, headers?}, body the response bytes. */
  batchOutcome(report, body) {
    return this._mutate((eng) => this.binding.batchOutcome(eng, report, toBytes(body), this.now()));
  }

  // ---- conflicts (issue 4; protocol in core/include/bgsync.h) ----

  /** The conflicts inbox, oldest first: filter {state: 'open'|'resolved'|'all', queue, entity, itemId, limit}. */
  conflicts(filter) {
    this._check();
    return this.binding.conflicts(this.eng, filter);
  }

  /** The remote document (null = gone) and its ETag for a conflict that needsRemote; resolves once durable. */
  conflictRemote(id, doc, version) {
    return this._mutate((eng) => this.binding.conflictRemote(eng, id, doc, version, this.now()));
  }

  /** Resolves a conflict: {keep: 'local'|'remote'} or {document}, optional version; resolves once durable. */
  conflictResolve(id, resolution) {
    return this._mutate((eng) => this.binding.conflictResolve(eng, id, resolution, this.now()));
  }

  /** The three-way merge on its own (no state changes): {merged, conflicts}. */
  merge3(base, local, remote, rules) {
    this._check();
    return this.binding.merge3(this.eng, base, local, remote, rules);
  }

  async close() {
    if (this._closed) return;
    await this.settle();
    this._closed = true;
    this.binding.close(this.eng);
    this.eng = 0;
    await this.store.close?.();
  }
}

/**
 * Checks what a store loaded before the engine sees it: a SQLite file of whole 4 KiB
 * pages, every page present once, and a header that agrees with the size. Chunk CRCs
 * are checked next, by bgs_image_load. Throws 'storage-corrupt' with the reason.
 */
export function verifyStored(stored) {
  if (stored === null) return;
  const fail = (why) => {
    throw new BgsyncError('storage-corrupt', why);
  };
  const PAGE = 4096;
  const { size, chunks } = stored;
  if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE !== 0) fail(`bad file size ${size}`);
  const live = size / PAGE;
  const seen = new Uint8Array(live);
  for (const c of chunks) {
    if (!Number.isInteger(c.index) || c.index < 0 || c.index >= live) fail(`chunk ${c.index} is past the end`);
    if (seen[c.index]) fail(`chunk ${c.index} appears twice`);
    if (!(c.data instanceof Uint8Array) || c.data.length !== PAGE) fail(`chunk ${c.index} has a wrong length`);
    seen[c.index] = 1;
  }
  const missing = seen.indexOf(0);
  if (missing >= 0) fail(`chunk ${missing} of ${live} is missing`);
  const head = chunks.find((c) => c.index === 0).data;
  const magic = 'SQLite format 3\0';
  for (let i = 0; i < magic.length; i++) if (head[i] !== magic.charCodeAt(i)) fail('not a SQLite database');
  const dv = new DataView(head.buffer, head.byteOffset, PAGE);
  if (dv.getUint16(16) !== PAGE) fail(`page size ${dv.getUint16(16)} is not ${PAGE}`);
  // The in-header page count is valid when the change counter matches version-valid-for.
  if (dv.getUint32(24) === dv.getUint32(92) && dv.getUint32(28) !== live) {
    fail(`the header counts ${dv.getUint32(28)} pages, the store holds ${live}`);
  }
}

/** A body that goes to the blob store: every Blob, and bytes over the threshold. */
function isLarge(body, threshold) {
  if (typeof Blob !== 'undefined' && body instanceof Blob) return true;
  const size = bodySize(body);
  return size > threshold;
}

function toBytes(body) {
  if (body == null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength);
  if (typeof body === 'string') return new TextEncoder().encode(body);
  throw new BgsyncError('invalid-argument', 'body must be bytes or a string');
}

function toStorageError(err) {
  if (err instanceof BgsyncError) return err;
  const name = err?.name ?? '';
  if (name === 'QuotaExceededError' || err?.code === 'ENOSPC') {
    return new BgsyncError('storage-quota', String(err?.message ?? ''), { cause: err });
  }
  return new BgsyncError('storage-failed', String(err?.message ?? err), { cause: err });
}

function randomId() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
