/**
 * BgsyncWorker -- the service-worker side of bgsync. It loads the engine module, opens the
 * Engine over a page store and owns it (pages never touch the database; they message
 * this class through SyncClient). It maps the worker's events to engine calls:
 *
 *   sync `bgsync:<queue>`  replay that queue (Background Sync API)
 *   periodicsync           fetch due pulls into the Cache API, then replay every queue
 *   push                   a payload {"bgsync": "sync", "queue"?} asks for a replay
 *   message                the SyncClient protocol (web/protocol.js)
 *   (no SyncManager)       replay on worker start and whenever a page asks (online,
 *                          visibilitychange, a timer, syncNow)
 *
 * Decision on `sync`: the promise given to event.waitUntil REJECTS when retryable items
 * remain in the queue after the run (backoff, a deadline stop, the network still down).
 * A rejected sync event is how a page tells Chromium "try again later"; the browser then
 * retries with its own backoff (minutes) even with no page open. A run that left only
 * done, dead, conflict or auth items resolves: retrying would not change them.
 *
 * User constraints (sw/Conditions.js): a queue whose constraints the last page report does
 * not meet (metered network, Save-Data on, battery low) is not replayed by any trigger; its
 * items stay queued, status().waitingFor says why and pages get a `deferred` event. Such a
 * `sync` RESOLVES: only a page can report a change, so a browser retry minutes later would
 * find the same report and spend the tag's few retries for nothing. A report that lifts the
 * constraint asks for a replay at once (a sync registration, or a run without the API).
 *
 * Time: `now` (default Date.now) is the engine's clock (due times, leases, backoff).
 * Event budgets use real time (`clockMs`), since the browser's limit is real time.
 */
import { BgsyncError } from '../web/BgsyncError.js';
import {
  MAX_BATCH_CALLS,
  PROTOCOL_VERSION,
  PULL_TAG,
  isPlainObject,
  queueOfTag,
  syncTag,
  validateRequest,
  checkHeaders,
  checkConditionsReport,
} from '../web/protocol.js';
import { Engine } from './Engine.js';
import { Replayer } from './Replayer.js';
import { ticketFor } from './HeadStart.js';
import { Conditions, REASONS, checkConstraints } from './Conditions.js';
import { openBlobStore } from './BlobStore.js';
import { loadEngineModule, precacheEngineModule } from './loadEngineModule.js';
import { openStore } from './storage/openStore.js';

const DEFAULTS = Object.freeze({
  storage: 'indexeddb',
  storeName: 'default',
  concurrency: 6,
  // Chromium aborts a sync event after 3 minutes (5 in some versions); stop taking
  // new work well before, so replies and outcomes still fit in.
  eventBudgetMs: 150_000,
  requestTimeoutMs: 30_000,
  stripHeaders: ['authorization', 'cookie', 'proxy-authorization'],
  allowedOrigins: [],
  pulls: [],
  pullCacheName: 'bgsync-pulls',
  allowTestClock: false,
  blobStore: 'auto', // 'auto': IndexedDB/OPFS blobs next to the store; false: bodies stay in the database
  largeBodyBytes: 64 * 1024,
  conditionsMaxAgeMs: null, // a conditions report never goes stale by itself (see Conditions.js)
  headStart: true, // a cold start's first request goes out before the engine opens (HeadStart.js)
});

/** Broadcasts the notify hook hears: a run that ended, items that need the user. */
const NOTIFIABLE = ['completed', 'failed', 'dead', 'auth', 'conflict'];

/** Engine methods that colleagues add over time; messages map to them when present. */
const OPTIONAL_ENGINE_CALLS = {
  deadLetters: { method: 'items', call: (e, a) => e.items(a.queue ? { queue: a.queue, state: 'dead' } : { state: 'dead' }) },
  retryDead: { method: 'deadRetry', call: (e, a) => e.deadRetry(a.id) },
  discardDead: { method: 'deadDiscard', call: (e, a) => e.deadDiscard(a.id) },
  releaseAuth: { method: 'authRelease', call: (e, a) => e.authRelease(a.queue) },
  attempts: { method: 'attempts', call: (e, a) => e.attempts(pick(a, ['id', 'limit'])) },
  conflicts: { method: 'conflicts', call: (e, a) => e.conflicts(pick(a, ['queue', 'state', 'entity', 'limit'])) },
  resolveConflict: { method: 'conflictResolve', call: (e, a) => e.conflictResolve(a.id, a.resolution) },
};
/** After these, items may be ready again: ask for a sync. */
const RELEASING_CALLS = ['retryDead', 'releaseAuth', 'resolveConflict'];

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

/** Status messages to pages are coalesced over this window (see broadcastStatus). */
const STATUS_COALESCE_MS = 50;

export class BgsyncWorker {
  /**
   * @param {{queues?: object[], storage?: 'indexeddb'|object, storeName?: string,
   *          concurrency?: number, now?: () => number, clockMs?: () => number,
   *          wasmUrl?: string|URL, wasmModule?: WebAssembly.Module, allowedOrigins?: string[],
   *          eventBudgetMs?: number, requestTimeoutMs?: number, stripHeaders?: string[],
   *          credentials?: (ctx: {item: object, refresh: boolean}) => Promise<object|null>,
   *          resolveConflict?: (conflict: object) => Promise<object|null>,
   *          pulls?: {name: string, url: string, minIntervalMs: number}[],
   *          fetch?: Function, logger?: {warn: Function, info?: Function},
   *          notify?: (e: {type: string, detail: object}) => ({title: string}|null),
   *          blobStore?: 'auto'|false|object, largeBodyBytes?: number,
   *          engineOptions?: object, allowTestClock?: boolean,
   *          constraints?: {unmetered?: boolean, respectSaveData?: boolean, batteryNotLow?: boolean,
   *                         lowBatteryLevel?: number}, conditionsMaxAgeMs?: number|null}} [options]
   *   constraints: the default of every queue; a queue's own `constraints` override it field by field.
   */
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    const queues = options.queues ?? [{ name: 'default' }];
    if (!Array.isArray(queues) || queues.length === 0 || !queues.every((q) => isPlainObject(q) && typeof q.name === 'string')) {
      throw new BgsyncError('invalid-argument', 'queues must be a non-empty array of {name, ...}');
    }
    if (!(Number.isInteger(this.options.concurrency) && this.options.concurrency >= 1 && this.options.concurrency <= 64)) {
      throw new BgsyncError('invalid-argument', 'concurrency must be an integer from 1 to 64');
    }
    this.queueNames = queues.map((q) => q.name);
    this.queueConfigs = queues;
    // queue -> its constraints (null: sends whatever pages report), checked now: a typo throws.
    this.constraints = new Map(queues.map((q) => [q.name, checkConstraints(this.options.constraints, q.constraints, `queue '${q.name}'`)]));
    this.log = this.options.logger ?? console;
    this.clockOffsetMs = 0; // test clock only (allowTestClock)
    const baseNow = this.options.now ?? (() => Date.now());
    this.now = () => baseNow() + this.clockOffsetMs;
    this.clockMs = this.options.clockMs ?? (() => Date.now());
    this.scope = null;
    this._engine = null;
    this.runs = new Map(); // queue -> {promise, again}
    this.lastRuns = new Map(); // queue -> {trigger, startedAt, endedAt, attempted, states, result}
    this.lastEnqueueAt = 0;
    this.diagnostics = { ignoredMessages: 0, lastIgnoredReason: null, headStarts: { sent: 0, claimed: 0, orphaned: 0 } };
    // Head start (HeadStart.js): the stored tickets, read with the store; the requests sent
    // from them (queue -> {ticket, sent, claimed}); closed once the engine is open, after
    // which no ticket may be sent (the engine's state has moved on from the stored one).
    this._ticketsRead = null;
    this._aheadSent = new Map();
    this._aheadClosed = false;
    // Tells one life of the worker from the next (a page can see that the worker restarted).
    this.instanceId = Math.random().toString(36).slice(2, 10);
    this._asked = new Set(); // queues replayed or with a sync requested in this life
    this._syncTags = new Set(); // queues whose sync registration waits for the end of the task
    this._deferred = new Map(); // queue -> the reasons its last deferral was announced with
    this.conditions = new Conditions({
      caches: () => this.scope?.caches,
      scopeUrl: () => this.scope?.location?.href,
      name: this.options.storeName,
      now: () => this.now(),
      maxAgeMs: this.options.conditionsMaxAgeMs,
      log: this.log,
    });
  }

  /** The engine, opened on first use (module load + store load). */
  engine() {
    if (this.retired) return Promise.reject(new BgsyncError('engine-closed', 'a newer version of the worker took over'));
    if (!this._engine) {
      this._engine = (async () => {
        // The store is read while the module compiles: both are most of a cold start.
        const { storage, storeName: name } = this.options;
        // So is the last conditions report, where a queue has constraints (see waitingFor).
        if ([...this.constraints.values()].some(Boolean)) this.conditions.load().catch(() => {});
        const headQueues = this._headStartQueues();
        const opening = openStore({ storage, name }).then((store) => {
          // The tickets come first in the load (one small record), wanted as soon as a
          // `sync` event comes; a store that does not hand them over gives null at its end.
          let gotTickets = () => {};
          const tickets =
            headQueues.length > 0 && typeof store.readAhead === 'function'
              ? new Promise((resolve) => {
                  gotTickets = (t) => {
                    gotTickets = () => {};
                    mark('bgsync:tickets-read');
                    resolve(t);
                  };
                })
              : null;
          const initialLoad = store.load(tickets ? { onAhead: gotTickets } : undefined);
          initialLoad.then(() => mark('bgsync:store-loaded'), () => undefined).finally(() => gotTickets(null));
          return { store, initialLoad, tickets };
        });
        if (headQueues.length > 0 && !this._aheadClosed) this._ticketsRead = opening.then((o) => o.tickets, () => null);
        opening.then(({ initialLoad }) => initialLoad.catch(() => {}), () => {}); // judged by Engine.open
        let module;
        try {
          // With a head start, the module is fetched once the tickets are read: compiling it
          // holds this worker's event loop (Chromium 156: the lock and the IndexedDB answers
          // came 15-25 ms later while it ran), which put the first request behind it.
          if (this._ticketsRead) {
            await this._ticketsRead;
            await null; // after the head start's own continuation on the same promise
          }
          module = await loadEngineModule({ wasmUrl: this.options.wasmUrl, wasmModule: this.options.wasmModule });
          mark('bgsync:module-ready');
        } catch (err) {
          // Give the store (and its lock) back, so that the next event can try again.
          opening.then(({ store }) => store.close?.()).catch(() => {});
          throw err;
        }
        const { store, initialLoad } = await opening;
        // Large bodies (and Blobs) live beside the database, in the same kind of storage.
        let blobStore = this.options.blobStore;
        if (blobStore === 'auto') blobStore = storage === 'indexeddb' || storage === 'opfs' ? openBlobStore({ storage, name }) : null;
        // engineOptions: the rest of Engine.open's options (onCorrupt, verify, seed, ...).
        const engine = await Engine.open(module, store, {
          ...this.options.engineOptions,
          initialLoad,
          blobStore: blobStore || null,
          largeBodyBytes: this.options.largeBodyBytes,
          now: () => this.now(),
          queues: this.queueConfigs,
          headStartQueues: headQueues,
        });
        mark('bgsync:engine-open');
        await this._claimHeadStarts(engine);
        // A quarantine leaves an empty queue: pages must hear it, never just see it empty.
        if (engine.recovery) this.broadcast('recovered', engine.recovery);
        return engine;
      })();
      this._engine.catch(() => {
        this._engine = null; // a later event tries again
        this._closeHeadStarts();
      });
    }
    return this._engine;
  }

  // ---------------------------------------------------------------------------------
  // Head start (sw/HeadStart.js)

  /** Queues that take part: not batched, no user constraints; only where `sync` events come. */
  _headStartQueues() {
    if (this.options.headStart === false || !this.hasBackgroundSync()) return [];
    return this.queueConfigs.filter((q) => !q.batch && !this.constraints.get(q.name)).map((q) => q.name);
  }

  /**
   * A `sync` event for `queue` while the engine is still opening: sends the stored
   * ticket's request now. Decided and registered in one step once the ticket is read, so
   * the open either sees the request (and leases its item first) or it is never sent.
   */
  _headStart(queue) {
    const reading = this._ticketsRead;
    if (!reading || this._aheadClosed || this._aheadSent.has(queue) || !this._headStartQueues().includes(queue)) return;
    reading.then((record) => {
      if (this._aheadClosed || this._aheadSent.has(queue)) return;
      const { ticket, reason } = ticketFor(record, queue, this.now());
      if (reason) this.log.warn(`bgsync: no head start for '${queue}': ${reason}`);
      if (!ticket) return;
      try {
        this._checkUrl(ticket.item.url); // the allow-list may have shrunk since it was stored
      } catch {
        return; // the replay refuses it as usual
      }
      const sender = new Replayer({
        engine: null,
        fetch: this.fetch,
        concurrency: 1,
        requestTimeoutMs: this.options.requestTimeoutMs,
        credentials: this.options.credentials,
        clockMs: this.clockMs,
      });
      mark('bgsync:head-start');
      const sent = sender._send(ticket.item, ticket.body);
      sent.catch(() => {}); // a failure is the attempt's outcome (status 0), reported by the run
      this._aheadSent.set(queue, { ticket, sent, claimed: undefined, taken: false });
      this.diagnostics.headStarts.sent++;
    });
  }

  /** Inside the open, before anything else can claim: leases the items sent ahead. */
  async _claimHeadStarts(engine) {
    this._aheadClosed = true;
    for (const [queue, entry] of this._aheadSent) {
      if (entry.claimed !== undefined) continue;
      let item = null;
      try {
        item = await engine.claimItem(queue, entry.ticket.item.id);
      } catch (err) {
        this.log.warn(`bgsync: the head start of '${queue}' could not be claimed: ${err?.message ?? err}`);
      }
      // The same item (and so the same bytes): a different key would be another item.
      if (item && item.key !== entry.ticket.item.key) {
        this.log.warn(`bgsync: the head start of '${queue}' names another item now; it waits for its lease to end`);
        item = null;
      }
      entry.claimed = item;
      if (item) this.diagnostics.headStarts.claimed++;
      else this._orphanHeadStart(queue, entry);
    }
  }

  /** The open failed: requests already sent have no lease to report to. */
  _closeHeadStarts() {
    this._aheadClosed = true;
    for (const [queue, entry] of this._aheadSent) {
      if (entry.claimed === undefined) {
        entry.claimed = null;
        this._orphanHeadStart(queue, entry);
      }
    }
  }

  _orphanHeadStart(queue, entry) {
    this.diagnostics.headStarts.orphaned++;
    // Nothing is lost: the item, where it still exists, is sent again under the same key.
    this.log.warn(`bgsync: a head-start request of '${queue}' (item ${entry.ticket.item.id}) is not reported; it is sent again later with the same Idempotency-Key`);
  }

  /** The head start a run of `queue` reports, once. */
  _takeHeadStart(queue) {
    const entry = this._aheadSent.get(queue);
    if (!entry?.claimed || entry.taken) return null;
    entry.taken = true;
    return { item: entry.claimed, sent: entry.sent };
  }

  /** True when the Background Sync API is usable in this worker. */
  hasBackgroundSync() {
    const s = this.scope;
    return !!s && typeof s.SyncManager === 'function' && !!s.registration?.sync;
  }

  /** Installs the event listeners; call once, synchronously, in the worker's top level. */
  listen(scope = globalThis) {
    this.scope = scope;
    // A batch endpoint is a URL replays go to: the origin rule holds for it, refused now.
    for (const q of this.queueConfigs) if (q.batch?.url !== undefined) this._checkUrl(q.batch.url);
    this.fetch = this.options.fetch ?? scope.fetch.bind(scope);
    scope.addEventListener('sync', (event) => this._onSync(event));
    scope.addEventListener('periodicsync', (event) => this._onPeriodicSync(event));
    scope.addEventListener('push', (event) => this._onPush(event));
    scope.addEventListener('message', (event) => this._onMessage(event));
    // Installed means startable offline: the module must be in the Cache API by then.
    scope.addEventListener('install', (event) => {
      if (!this.options.wasmModule) event.waitUntil(precacheEngineModule(this.options.wasmUrl));
    });
    this._watchForSuccessor(scope);
    // A version being installed waits for its activation before it opens the engine: the
    // store's lock is the active version's while that one still serves its pages, and an
    // old version woken for a page's request during the update would otherwise wait for a
    // lock that the new version holds, while the new version's activation waits for the
    // old one's events to finish: neither would move until the browser gave up.
    if (this._isSuccessor(scope)) {
      scope.addEventListener('activate', () => this._start(), { once: true });
    } else {
      this._start();
    }
    return this;
  }

  /** True when this worker is a new version, not yet active (needs self.serviceWorker). */
  _isSuccessor(scope) {
    const me = scope.serviceWorker;
    if (!me || !scope.registration) return false;
    return me.state === 'parsed' || me.state === 'installing' || me.state === 'installed';
  }

  /** Opens the engine; without Background Sync, start is a replay trigger. */
  _start() {
    const start = this.engine().then(async (engine) => {
      if (!this.hasBackgroundSync()) return this.syncAll('start');
      // One task later: a `sync` that woke this worker claims and sends its first request
      // before this reads the status of every queue (at a cold start that read cost
      // 30 ms in front of the first request). A queue that an enqueue handled meanwhile
      // touched counts as asked (see enqueue), so it is not asked twice.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (this.retired) return undefined;
      // A tag registered before a browser restart may be gone while its items are not:
      // ask again for every queue with work ready now (due retries and expired leases
      // count as pending). Items still backing off wait for the browser's own retry of
      // the sync that left them, so a start never schedules a wake-up loop. It leaves out
      // a queue this life already replays (woken by its `sync`): asking again during the
      // run would make the browser fire another `sync` right after it, a second run
      // against a server that just failed the first.
      const queues = engine.status().queues ?? {};
      for (const [queue, counts] of Object.entries(queues)) {
        if (counts.pending > 0 && !this._asked.has(queue)) this.requestSync(queue);
      }
      return undefined;
    });
    start.catch((err) => this.log.warn(`bgsync: start failed: ${err?.message ?? err}`));
  }

  /**
   * One owner per store (StoreLock): the store stays locked for as long as this worker
   * holds the engine, so a new version would wait for this one to be terminated. As soon
   * as a successor activates, this worker closes its engine and gives the lock up.
   * A successor may already exist when this worker starts (the browser stopped the old
   * version and woke it again while the new one was installed): it is watched too, and
   * this worker also retires when it becomes redundant itself.
   */
  _watchForSuccessor(scope) {
    const registration = scope.registration;
    if (!registration?.addEventListener) return;
    const self = scope.serviceWorker;
    const retire = () => this.retire().catch((err) => this.log.warn(`bgsync: retire failed: ${err?.message ?? err}`));
    const watch = (next) => {
      if (!next || next === self) return; // that is this worker itself
      if (next.state === 'activating' || next.state === 'activated') return retire();
      next.addEventListener('statechange', () => {
        if (next.state === 'activating' || next.state === 'activated') retire();
      });
      return undefined;
    };
    registration.addEventListener('updatefound', () => watch(registration.installing));
    if (self && registration.active === self) {
      // Only the active version has successors; an installing one is the successor.
      watch(registration.waiting);
      watch(registration.installing);
    }
    self?.addEventListener?.('statechange', () => {
      if (self.state === 'redundant') retire();
    });
  }

  /** Closes the engine for good (its flushes settle first); later calls get engine-closed. */
  async retire() {
    if (this.retired) return;
    this.retired = true;
    const engine = await this._engine?.catch(() => null);
    await engine?.close();
  }

  // ---------------------------------------------------------------------------------
  // Enqueue

  /**
   * Validates and stores one request; resolves with {id, key} once it is durable, then
   * asks for a sync. `args` is the SyncClient shape (url absolute, body bytes or string).
   */
  async enqueue(args) {
    const url = this._checkUrl(args.url);
    const headers = checkHeaders(args.headers);
    if (!headers) throw new BgsyncError('invalid-argument', 'headers must be an object of strings');
    for (const name of this.options.stripHeaders) delete headers[name.toLowerCase()];
    const meta = { queue: args.queue ?? this.queueNames[0], method: args.method ?? 'POST', url, headers };
    for (const k of ['priority', 'entity', 'baseVersion', 'editedAt', 'conflictStrategy']) {
      if (args[k] !== undefined) meta[k] = args[k];
    }
    if (args.baseDocument !== undefined) {
      // The page sends it as JSON text (cheap to clone); the engine wants the object.
      try {
        meta.baseDocument = typeof args.baseDocument === 'string' ? JSON.parse(args.baseDocument) : args.baseDocument;
      } catch {
        throw new BgsyncError('invalid-argument', 'baseDocument is not JSON');
      }
    }
    const engine = await this.engine();
    // A text body has at least as many UTF-8 bytes as UTF-16 units: a long one over the
    // limit in units is refused before it is encoded (17 MiB of text took 0.7 s to encode
    // here). A short one costs little to encode, and the engine refuses it the same way.
    if (typeof args.body === 'string' && args.body.length > engine.largeBodyBytes) {
      const { maxBodyBytes } = await engine.queueLimits(meta.queue);
      if (args.body.length > maxBodyBytes) {
        throw new BgsyncError('body-too-large', `a text body of ${args.body.length} characters; queue '${meta.queue}' allows ${maxBodyBytes} bytes`);
      }
    }
    // Bytes, so that a large text body is measured and goes to the blob store too.
    const body = typeof args.body === 'string' ? new TextEncoder().encode(args.body) : args.body ?? undefined;
    // Counted as asked from the moment the item is in the engine: its sync is requested
    // once the item is durable (below), and the start's check of every queue (_start),
    // running in between, would otherwise see it pending and ask a second time.
    this._asked.add(meta.queue);
    const result = await engine.enqueue(meta, body);
    this.lastEnqueueAt = this.now();
    const asked = this.requestSync(meta.queue);
    this.broadcastStatus(meta.queue);
    return { ...result, syncRequested: asked };
  }

  /** Enqueues a Request (the Workbox plugin's path). Credentials are stripped as usual. */
  async enqueueRequest(request, { queue, priority, entity } = {}) {
    const headers = {};
    request.headers.forEach((value, name) => {
      headers[name] = value;
    });
    const hasBody = request.method !== 'GET' && request.method !== 'HEAD';
    const body = hasBody ? new Uint8Array(await request.arrayBuffer()) : undefined;
    return this.enqueue({ queue, method: request.method, url: request.url, headers, body, priority, entity });
  }

  _checkUrl(raw) {
    let url;
    try {
      url = new URL(raw);
    } catch {
      throw new BgsyncError('invalid-url', String(raw).slice(0, 200));
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new BgsyncError('invalid-url', url.protocol);
    // user:password@ would be stored at rest with the URL, and fetch() refuses such URLs
    // anyway; credentials belong in the credentials hook. The message does not echo them.
    if (url.username || url.password) throw new BgsyncError('invalid-url', 'a URL with user:password@ credentials');
    const own = this.scope?.location?.origin;
    const allowed = this.options.allowedOrigins.map((o) => new URL(o).origin);
    if (url.origin !== own && !allowed.includes(url.origin)) {
      throw new BgsyncError('origin-not-allowed', url.origin);
    }
    return url.href;
  }

  /**
   * Asks the browser for a `sync` event (Background Sync API), or replays now when the
   * API is missing. Returns 'registered' | 'replaying' | 'failed'.
   */
  requestSync(queue) {
    this._asked.add(queue);
    if (this.hasBackgroundSync()) {
      // One registration per queue for the calls of one task: the enqueues one flush made
      // durable resume together, and each registration is a round trip to the browser
      // (a burst of 1000 enqueues made 1000 of them). Every item is durable before the
      // register call that covers it is made, so its sync event still finds it.
      if (!this._syncTags.has(queue)) {
        this._syncTags.add(queue);
        queueMicrotask(() => {
          this._syncTags.delete(queue);
          this.scope.registration.sync.register(syncTag(queue)).catch((err) => {
            this.log.warn(`bgsync: sync.register failed (${err?.name}); replaying now`);
            this.sync(queue, { trigger: 'enqueue' }).catch(() => undefined);
          });
        });
      }
      return 'registered';
    }
    this.sync(queue, { trigger: 'enqueue' }).catch(() => undefined);
    return 'replaying';
  }

  // ---------------------------------------------------------------------------------
  // Replay

  /**
   * Replays `queue` (coalescing with a run in progress) within the event budget.
   * @returns {Promise<{queue, remaining: number, run: object}>} remaining = retryable items left
   */
  sync(queue, { trigger = 'manual', budgetMs = this.options.eventBudgetMs } = {}) {
    if (!this.queueNames.includes(queue)) return Promise.reject(new BgsyncError('unknown-queue', queue));
    this._asked.add(queue);
    const running = this.runs.get(queue);
    if (running) {
      running.again = true; // something new may be ready: the current run looks once more
      return running.promise;
    }
    const state = { again: false, promise: null };
    state.promise = this._run(queue, trigger, this.clockMs() + budgetMs, state).finally(() => {
      this.runs.delete(queue);
    });
    this.runs.set(queue, state);
    return state.promise;
  }

  /** Replays every queue (one after another, sharing the budget). */
  async syncAll(trigger, budgetMs = this.options.eventBudgetMs) {
    const deadline = this.clockMs() + budgetMs;
    const results = [];
    for (const q of this.queueNames) {
      results.push(await this.sync(q, { trigger, budgetMs: Math.max(0, deadline - this.clockMs()) }));
    }
    return results;
  }

  // ---------------------------------------------------------------------------------
  // User constraints (sw/Conditions.js)

  /** Why `queue` may not send under the last report, e.g. ['unmetered-network']; [] = it may. */
  async waitingFor(queue) {
    const constraints = this.constraints.get(queue);
    if (!constraints) return []; // no Cache API read in a cold start's path for nothing
    await this.conditions.load();
    return this.conditions.unmet(constraints);
  }

  /**
   * Applies a conditions report ({metered, saveData, battery, connectionType, effectiveType,
   * source}) once durable; a queue it unblocks is replayed at once. SyncClient sends these,
   * and worker code may call it too. Resolves with {conditions, waitingFor: {queue: reasons}}.
   */
  async reportConditions(report) {
    const checked = checkConditionsReport(isPlainObject(report) ? report : {});
    if (checked.reason) throw new BgsyncError('invalid-argument', `conditions report: bad ${checked.reason}`);
    const { before, after } = await this.conditions.report(checked.report);
    // The report is kept even when the engine cannot open now; a later run applies it.
    const engine = await this.engine().catch(() => null);
    const waitingFor = {};
    for (const q of this.queueNames) {
      const c = this.constraints.get(q);
      const reasons = this.conditions.unmet(c, after);
      if (reasons.length > 0) waitingFor[q] = reasons;
      const wasHeld = this.conditions.unmet(c, before).length > 0;
      if (wasHeld !== reasons.length > 0) this.broadcastStatus(q);
      if (wasHeld && reasons.length === 0 && engine && engine.status(q).counts.pending > 0) {
        if (this.hasBackgroundSync()) this.requestSync(q); // Chromium fires it at once when online
        else this.sync(q, { trigger: 'conditions' }).catch(() => undefined);
      }
    }
    this.broadcastStatus();
    return { conditions: after, waitingFor };
  }

  /**
   * A replay that constraints hold back: nothing is claimed, the items stay as they are.
   * Pages hear a `deferred` event when a queue starts waiting or waits for other reasons,
   * not at every trigger (the page's fallback timer asks every minute).
   */
  _defer(engine, queue, trigger, waitingFor) {
    const counts = engine.status(queue).counts;
    const remaining = counts.pending + counts.waiting + counts.inflight;
    if (remaining === 0) return { queue, remaining, run: null }; // nothing to hold back
    const key = waitingFor.join(',');
    if (this._deferred.get(queue) !== key) {
      this._deferred.set(queue, key);
      this.broadcast('deferred', { queue, waitingFor, remaining, trigger });
    }
    this.broadcastStatus(queue);
    return { queue, remaining, run: null, waitingFor };
  }

  async _run(queue, trigger, deadlineMs, state) {
    const engine = await this.engine();
    const waitingFor = await this.waitingFor(queue);
    if (waitingFor.length > 0) return this._defer(engine, queue, trigger, waitingFor);
    this._deferred.delete(queue);
    const run = { queue, trigger, startedAt: this.now(), endedAt: null, attempted: 0, states: {}, result: 'running' };
    this.broadcastStatus(queue);
    let done = 0;
    const replayer = new Replayer({
      engine,
      batch: !!this.queueConfigs.find((q) => q.name === queue)?.batch && typeof engine.claimBatch === 'function',
      fetch: this.fetch,
      concurrency: this.options.concurrency,
      requestTimeoutMs: this.options.requestTimeoutMs,
      credentials: this.options.credentials,
      resolveConflict: this.options.resolveConflict,
      clockMs: this.clockMs,
      checkUrl: (url) => this._checkUrl(url), // again at replay: the allow-list may have shrunk
      onOutcome: (item, decision, status) => {
        done++;
        if (this.retired) return; // the engine is closed: the successor reports from now on
        const counts = engine.status(queue).counts;
        this.broadcast('progress', { queue, done, total: done + counts.pending + counts.inflight, id: item.id, key: item.key, status, state: decision.state });
        if (['conflict', 'dead', 'auth'].includes(decision.state)) {
          this.broadcast(decision.state, { queue, id: item.id, key: item.key, url: item.url, method: item.method, status, reason: decision.reason ?? null });
        }
      },
    });
    let error = null;
    try {
      do {
        state.again = false;
        const s = await replayer.run(queue, { deadlineMs, ahead: this._takeHeadStart(queue) });
        run.attempted += s.attempted;
        for (const [k, v] of Object.entries(s.states)) run.states[k] = (run.states[k] ?? 0) + v;
        if (s.stoppedByDeadline) break;
        // A report that came in during the pass holds the next one back (not this one).
      } while (state.again && this.clockMs() < deadlineMs && this.conditions.unmet(this.constraints.get(queue)).length === 0);
    } catch (err) {
      error = err;
    }
    if (this.retired) return { queue, remaining: 0, run: { ...run, result: 'retired' } };
    const counts = engine.status(queue).counts;
    const remaining = counts.pending + counts.waiting + counts.inflight;
    run.endedAt = this.now();
    run.remaining = remaining;
    run.result = error || remaining > 0 || run.states.dead || run.states.auth || run.states.conflict ? 'failed' : 'completed';
    if (error) run.error = BgsyncError.prototype.toJSON.call(asBgsyncError(error));
    this.lastRuns.set(queue, run);
    // A run that found nothing due (all in backoff) is not news; the status broadcast says it.
    if (run.attempted > 0 || error) this.broadcast(run.result, { queue, run });
    this.broadcastStatus(queue);
    if (error) throw error;
    return { queue, remaining, run };
  }

  async _onSync(event) {
    const queue = queueOfTag(event.tag);
    if (queue === null || !this.queueNames.includes(queue)) return; // not ours
    this._headStart(queue);
    event.waitUntil(
      this.sync(queue, { trigger: event.lastChance ? 'sync-last-chance' : 'sync' }).then((r) => {
        // Deferred by user constraints: resolved, a page's report replays it (file comment).
        if (r.remaining > 0 && !r.waitingFor) {
          // Rejecting makes the browser schedule this tag again (see the file comment).
          throw new BgsyncError('invalid-state', `${r.remaining} item(s) of '${queue}' still wait; asking the browser to retry`);
        }
      }),
    );
  }

  _onPush(event) {
    let data = null;
    try {
      data = event.data ? event.data.json() : null;
    } catch {
      return; // not a bgsync push
    }
    if (!isPlainObject(data) || data.bgsync !== 'sync') return;
    const queue = data.queue;
    if (queue !== undefined && !this.queueNames.includes(queue)) {
      this.log.warn(`bgsync: push for unknown queue ignored`);
      return;
    }
    event.waitUntil(queue ? this.sync(queue, { trigger: 'push' }) : this.syncAll('push'));
  }

  _onPeriodicSync(event) {
    if (event.tag !== PULL_TAG && queueOfTag(event.tag) === null) return;
    event.waitUntil(
      (async () => {
        await this.pull();
        await this.syncAll('periodicsync');
      })(),
    );
  }

  /**
   * Fetches every due pull into the Cache API with its ETag (a 304 keeps the cached copy)
   * and tells the pages. Due-ness and the ETag live in the cached response itself
   * (header x-bgsync-fetched-at), so nothing else has to be stored.
   */
  async pull({ force = false } = {}) {
    const caches = this.scope?.caches;
    if (!caches || this.options.pulls.length === 0) return [];
    const cache = await caches.open(this.options.pullCacheName);
    const results = [];
    for (const p of this.options.pulls) {
      const url = this._checkUrl(new URL(p.url, this.scope.location.href).href);
      const cached = await cache.match(url);
      const fetchedAt = Number(cached?.headers.get('x-bgsync-fetched-at') ?? 0);
      if (!force && cached && this.now() - fetchedAt < (p.minIntervalMs ?? 0)) {
        results.push({ name: p.name, url, state: 'fresh' });
        continue;
      }
      const headers = {};
      const etag = cached?.headers.get('etag');
      if (etag) headers['if-none-match'] = etag;
      let state;
      try {
        const res = await this.fetch(url, { headers, cache: 'no-store', credentials: 'same-origin' });
        if (res.status === 304 && cached) {
          await cache.put(url, restamp(cached, this.now(), await cached.arrayBuffer()));
          state = 'not-modified';
        } else if (res.ok) {
          await cache.put(url, restamp(res, this.now(), await res.arrayBuffer()));
          state = 'updated';
        } else {
          state = 'failed';
        }
        results.push({ name: p.name, url, state, status: res.status });
      } catch {
        results.push({ name: p.name, url, state: 'failed', status: 0 });
      }
    }
    this.broadcast('pulled', { pulls: results });
    return results;
  }

  // ---------------------------------------------------------------------------------
  // Status and broadcasts

  /** Engine status plus what only the glue knows (run state, last run). */
  async status(queue) {
    if (queue !== undefined && !this.queueNames.includes(queue)) throw new BgsyncError('unknown-queue', queue);
    const engine = await this.engine();
    const s = engine.status(queue ?? null);
    const names = queue ? [queue] : this.queueNames;
    const lastRun = names.map((q) => this.lastRuns.get(q)).filter(Boolean).sort((a, b) => b.endedAt - a.endedAt)[0] ?? null;
    const running = names.some((q) => this.runs.has(q));
    const remaining = s.counts.pending + s.counts.waiting + s.counts.inflight;
    let state;
    if (running) state = 'running';
    else if (remaining > 0) state = lastRun?.result === 'failed' && lastRun.endedAt >= this.lastEnqueueAt ? 'failed' : 'scheduled';
    else state = lastRun ? lastRun.result : 'idle';
    // Queues with items that the last conditions report holds back, and why.
    await this.conditions.load();
    const conditions = this.conditions.current();
    const held = {};
    for (const q of names) {
      const c = q === queue ? s.counts : s.queues?.[q];
      const reasons = this.conditions.unmet(this.constraints.get(q), conditions);
      if (c && c.pending + c.waiting + c.inflight > 0 && reasons.length > 0) held[q] = reasons;
    }
    const waitingFor = Object.values(REASONS).filter((r) => Object.values(held).some((list) => list.includes(r)));
    return {
      queue: queue ?? null,
      counts: s.counts,
      state,
      nextAttemptAt: s.nextWakeAt ?? null,
      lastRun,
      queues: s.queues ?? {},
      backgroundSync: this.hasBackgroundSync(),
      waitingFor,
      waitingForByQueue: held,
      conditions,
      recovery: engine.recovery ?? null,
      now: this.now(),
    };
  }

  /**
   * Tells every page the status of `queue`. Calls within STATUS_COALESCE_MS share one
   * message per queue: a status scans the queue, and a burst of 1000 enqueues needs one
   * update for the pages, not 1000.
   */
  broadcastStatus(queue) {
    this._statusQueues ??= new Set();
    this._statusQueues.add(queue ?? null);
    if (this._statusTimer) return;
    this._statusTimer = setTimeout(() => {
      const queues = this._statusQueues;
      this._statusQueues = new Set();
      this._statusTimer = null;
      for (const q of queues) {
        this.status(q ?? undefined)
          .then((st) => this.broadcast('status', st))
          .catch(() => undefined);
      }
    }, STATUS_COALESCE_MS);
  }

  /** Posts an event to every window of this origin, controlled or not (and notifies, see notify). */
  async broadcast(event, detail) {
    if (NOTIFIABLE.includes(event)) await this._notify(event, detail);
    const clients = this.scope?.clients;
    if (!clients) return;
    try {
      const list = await clients.matchAll({ includeUncontrolled: true, type: 'window' });
      for (const c of list) c.postMessage({ bgsync: PROTOCOL_VERSION, event, detail });
    } catch (err) {
      this.log.warn(`bgsync: broadcast failed: ${err?.message ?? err}`);
    }
  }

  /**
   * The `notify` hook turns a finished run or an item that needs the user into a system
   * notification ({title, ...NotificationOptions}, or null for none). Shown only with the
   * permission granted: the worker cannot ask for it, a page must.
   */
  async _notify(event, detail) {
    const hook = this.options.notify;
    const registration = this.scope?.registration;
    if (typeof hook !== 'function' || !registration?.showNotification) return;
    if (this.scope.Notification?.permission !== 'granted') return;
    try {
      const n = await hook({ type: event, detail });
      if (n && typeof n.title === 'string') {
        const { title, ...options } = n;
        await registration.showNotification(title, options);
      }
    } catch (err) {
      this.log.warn(`bgsync: notification failed: ${err?.message ?? err}`);
    }
  }

  // ---------------------------------------------------------------------------------
  // Messages

  _ignore(reason) {
    this.diagnostics.ignoredMessages++;
    this.diagnostics.lastIgnoredReason = reason;
    this.log.warn(`bgsync: message ignored: ${reason}`);
  }

  _onMessage(event) {
    const data = event.data;
    // Messages of other libraries on the same worker are not ours: leave them quietly.
    if (!isPlainObject(data) || !('bgsync' in data)) return;
    const own = this.scope.location.origin;
    const source = event.source;
    let sourceOrigin = null;
    try {
      sourceOrigin = source && typeof source.url === 'string' ? new URL(source.url).origin : null;
    } catch {
      sourceOrigin = null;
    }
    if ((event.origin && event.origin !== own) || sourceOrigin !== own) {
      this._ignore(`foreign sender ${event.origin || sourceOrigin}`);
      return;
    }
    const port = event.ports?.[0];
    if (!port) {
      this._ignore('no reply port');
      return;
    }
    const checked = validateRequest(data);
    if (checked.reason) {
      this._ignore(checked.reason);
      // A version mismatch is answered: the page must learn it is out of date.
      if (Number.isInteger(data.bgsync) && data.bgsync !== PROTOCOL_VERSION) {
        port.postMessage({ bgsync: PROTOCOL_VERSION, ok: false, error: new BgsyncError('protocol-mismatch', `worker speaks ${PROTOCOL_VERSION}`).toJSON() });
      }
      return;
    }
    if (checked.type !== 'batch') {
      event.waitUntil?.(this._answer(port, this._handle(checked.type, checked.args, event)));
      return;
    }
    // The calls of one page task: started in order (as separate messages would be), each
    // answered on the port when it ends. A call that fails validation is ignored alone.
    const work = checked.args.calls.map((call, index) => {
      if (call.reason) {
        this._ignore(`batch call ${index}: ${call.reason}`);
        return undefined;
      }
      return this._answer(port, this._handle(call.type, call.args, event), index);
    });
    event.waitUntil?.(Promise.all(work));
  }

  /** Posts the outcome of one call on its reply port (index: its place in a batch). */
  _answer(port, work, index) {
    const tag = index === undefined ? {} : { index };
    return work.then(
      (result) => port.postMessage({ bgsync: PROTOCOL_VERSION, ok: true, result, ...tag }),
      (err) => port.postMessage({ bgsync: PROTOCOL_VERSION, ok: false, error: asBgsyncError(err).toJSON(), ...tag }),
    );
  }

  async _handle(type, args) {
    switch (type) {
      case 'hello':
        return {
          protocol: PROTOCOL_VERSION,
          instanceId: this.instanceId,
          queues: this.queueNames,
          backgroundSync: this.hasBackgroundSync(),
          batch: MAX_BATCH_CALLS,
          conditions: true, // takes reportConditions (SyncClient reports only to such a worker)
          diagnostics: { ...this.diagnostics },
        };
      case 'enqueue':
        if (!this.queueNames.includes(args.queue)) throw new BgsyncError('unknown-queue', args.queue);
        return this.enqueue(args);
      case 'status':
        return this.status(args.queue);
      case 'syncNow': {
        const trigger = args.trigger ?? 'page';
        const rs = args.queue ? [await this.sync(args.queue, { trigger })] : await this.syncAll(trigger);
        const held = [...new Set(rs.flatMap((r) => r.waitingFor ?? []))];
        const result = { remaining: rs.reduce((n, r) => n + r.remaining, 0) };
        if (held.length > 0) result.waitingFor = Object.values(REASONS).filter((r) => held.includes(r));
        return result;
      }
      case 'reportConditions':
        return this.reportConditions(args);
      case 'items': {
        const engine = await this.engine();
        const filter = {};
        for (const k of ['queue', 'state', 'limit']) if (args[k] !== undefined) filter[k] = args[k];
        return engine.items(filter);
      }
      case 'testClock':
        if (!this.options.allowTestClock) throw new BgsyncError('bad-message', 'the test clock is not enabled');
        this.clockOffsetMs = args.offsetMs;
        return { now: this.now() };
      default: {
        const engine = await this.engine();
        const entry = OPTIONAL_ENGINE_CALLS[type];
        if (!entry || typeof engine[entry.method] !== 'function') {
          throw new BgsyncError('bad-message', `${type} is not available in this engine`);
        }
        const released = RELEASING_CALLS.includes(type) ? (args.queue ? [args.queue] : this.queueNames) : [];
        for (const q of released) this._asked.add(q); // before the call, as in enqueue
        const result = await entry.call(engine, args);
        for (const q of released) this.requestSync(q);
        this.broadcastStatus(args.queue);
        return result ?? null;
      }
    }
  }
}

function asBgsyncError(err) {
  if (err instanceof BgsyncError) return err;
  if (err && typeof err.code === 'string' && err.name === 'BgsyncError') return BgsyncError.fromJSON(err);
  return new BgsyncError('internal-error', String(err?.message ?? err));
}

function restamp(res, nowMs, body) {
  const headers = new Headers(res.headers);
  headers.set('x-bgsync-fetched-at', String(nowMs));
  return new Response(body, { status: res.status === 304 ? 200 : res.status, statusText: res.statusText, headers });
}

/** A User Timing mark (DevTools' performance panel shows them): where a cold start goes. */
function mark(name) {
  globalThis.performance?.mark?.(name);
}
