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
 */
import { BgsyncError } from '../web/BgsyncError.js';
import { EngineBinding } from './EngineBinding.js';

export class Engine {
  /**
   * @param {object} module  the loaded Emscripten module (loadEngineModule)
   * @param {object} store   a page store (MemoryStore, IndexedDbStore, FileStore, ...)
   * @param {{now?: () => number, seed?: number, leaseMs?: number,
   *          installId?: string, queues?: object[]}} [options]
   */
  static async open(module, store, options = {}) {
    const engine = new Engine(new EngineBinding(module), store, options);
    await engine._load();
    for (const q of options.queues ?? []) await engine.configureQueue(q);
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
  }

  async _load() {
    const stored = await this.store.load();
    const installId = this.options.installId ?? randomId();
    this.eng = this.binding.open(stored, {
      installId,
      seed: this.options.seed ?? Math.floor(Math.random() * 2 ** 52),
      leaseMs: this.options.leaseMs ?? 0,
      now: this.now(),
    });
    if (!stored) await this._mutate(() => undefined); // the new schema is durable before use
  }

  _check() {
    if (this._closed) throw new BgsyncError('engine-closed');
  }

  /** Runs fn against the engine now, resolves once its changes are durable. */
  async _mutate(fn) {
    this._check();
    if (this._reloading) await this._reloading;
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
          await this.store.write(changes);
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
        this._reloading = this._reload();
        await this._reloading;
        this._reloading = null;
        continue;
      }
      for (const w of batch) w.resolve(w.value);
    }
    this._flushing = null;
  }

  async _reload() {
    this.binding.close(this.eng);
    this.eng = 0;
    this.stats.reloads++;
    const stored = await this.store.load();
    this.eng = this.binding.open(stored, {
      installId: this.options.installId ?? randomId(),
      seed: this.options.seed ?? 0,
      leaseMs: this.options.leaseMs ?? 0,
      now: this.now(),
    });
    this._storedSize = stored ? stored.size : undefined;
    if (!stored) {
      // Nothing was ever stored: the schema itself must become durable again.
      this.binding.takeChanges(this.eng);
    }
    for (const cfg of this.queueConfigs.values()) this.binding.configureQueue(this.eng, cfg, this.now());
    // Queue configurations re-applied in memory; they reach the store with the next flush.
  }

  /** Waits for every flush in progress (tests, shutdown). */
  async settle() {
    while (this._flushing || this._reloading) await (this._flushing ?? this._reloading);
  }

  configureQueue(config) {
    this.queueConfigs.set(config?.name, config);
    return this._mutate((eng) => this.binding.configureQueue(eng, config, this.now()));
  }

  /** @returns {Promise<{id: number, key: string}>} once the item is durable */
  enqueue(meta, body) {
    return this._mutate((eng) => this.binding.enqueue(eng, meta, toBytes(body), this.now()));
  }

  /** Leases up to `max` ready items; resolves once the leases are durable. */
  claim(queue, max = 1) {
    return this._mutate((eng) => this.binding.claim(eng, queue, max, this.now()));
  }

  outcome(report, body) {
    return this._mutate((eng) => this.binding.outcome(eng, report, toBytes(body), this.now()));
  }

  body(id) {
    this._check();
    return this.binding.body(this.eng, id);
  }

  status(queue) {
    this._check();
    return this.binding.status(this.eng, queue ?? null, this.now());
  }

  items(filter) {
    this._check();
    return this.binding.items(this.eng, filter);
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
