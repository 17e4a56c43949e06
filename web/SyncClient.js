/**
 * SyncClient -- the page side of bgsync. It never loads the engine: every call is a
 * message to the service worker (web/protocol.js) over a MessageChannel, answered on that
 * channel (the calls of one task share one message: web/WorkerRequests.js); the worker's
 * broadcasts arrive as events on this EventTarget:
 *   progress {queue, done, total}, status {counts, state, ...}, completed, failed,
 *   conflict, dead, auth, pulled, deferred {queue, waitingFor} (user constraints held a queue),
 *   recovered {code, detail, movedTo, at} (the worker quarantined a damaged store).
 *
 * `enqueue` resolves only once the worker reports the item durable (stored in
 * IndexedDB/OPFS); a rejection means nothing was stored.
 *
 * Where the Background Sync API is missing (the worker says so in `hello`), the client is
 * the trigger: it asks for a replay on `online`, when the page becomes visible, and every
 * `fallbackIntervalMs` while visible.
 *
 * Conditions (the worker's user constraints, sw/Conditions.js): a worker cannot see the
 * battery, nor Save-Data in most browsers, so the client reports what the page can read --
 * navigator.connection (type, effectiveType, saveData) and navigator.getBattery() (level,
 * charging) -- on connect and at every change, as source 'browser'. An app reports its own
 * knowledge with reportConditions() (source 'app', which wins over the browser's values).
 * `watchConditions: false` turns the automatic reports off.
 */
import { BgsyncError } from './BgsyncError.js';
import { CONNECTION_TYPES, EFFECTIVE_TYPES, EVENT_TYPES, PROTOCOL_VERSION, PULL_TAG, validateRequest } from './protocol.js';
import { WorkerRequests, withTimeout } from './WorkerRequests.js';

const DEFAULTS = Object.freeze({ timeoutMs: 30_000, readyTimeoutMs: 30_000, fallbackIntervalMs: 60_000, watchConditions: true });

export class SyncClient extends EventTarget {
  /**
   * @param {{serviceWorker?: ServiceWorkerContainer, timeoutMs?: number,
   *          readyTimeoutMs?: number, fallbackIntervalMs?: number, baseUrl?: string,
   *          watchConditions?: boolean}} [options]
   */
  constructor(options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    this.container = options.serviceWorker ?? globalThis.navigator?.serviceWorker;
    this.baseUrl = options.baseUrl ?? globalThis.location?.href;
    this._ready = null;
    this._requests = new WorkerRequests({ timeoutMs: this.options.timeoutMs });
    this._fallbackTimer = null;
    this._listeners = [];
    this._watching = false; // connection/battery listeners installed
    if (this.container) {
      const onMessage = (e) => this._onBroadcast(e);
      this.container.addEventListener('message', onMessage);
      this._listeners.push(() => this.container.removeEventListener('message', onMessage));
      // A new worker took over (an update): talk to it from now on.
      const onController = () => {
        this._ready = null;
      };
      this.container.addEventListener('controllerchange', onController);
      this._listeners.push(() => this.container.removeEventListener('controllerchange', onController));
      // Messages from the worker wait in a queue until this is called (or onmessage is set).
      this.container.startMessages?.();
    }
  }

  /** Resolves with the active worker once there is one (and it answered hello). */
  ready() {
    if (!this._ready) {
      this._ready = (async () => {
        if (!this.container) throw new BgsyncError('no-service-worker', 'navigator.serviceWorker is missing');
        const registration = await withTimeout(this.container.ready, this.options.readyTimeoutMs, 'no-service-worker');
        const worker = registration.active;
        if (!worker) throw new BgsyncError('no-service-worker');
        this.worker = worker;
        this.info = await this._request('hello', {});
        if (!this.info.backgroundSync) this._startFallback();
        // Every worker that answers hello hears the conditions (a new version, a restart).
        if (this.info.conditions && this.options.watchConditions) this._reportBrowserConditions();
        return worker;
      })();
      this._ready.catch(() => {
        this._ready = null;
      });
    }
    return this._ready;
  }

  /**
   * Queues one request. Resolves with {id, key} once the item is durable.
   * @param {{url: string, method?: string, headers?: object|Headers, body?: any,
   *          queue?: string, priority?: string, entity?: string, baseVersion?: string,
   *          baseDocument?: object|string, editedAt?: number,
   *          conflictStrategy?: string|object}} request
   */
  async enqueue({ url, method = 'POST', headers, body, queue = 'default', priority, entity, baseVersion, baseDocument, editedAt, conflictStrategy } = {}) {
    if (typeof url !== 'string' && !(url instanceof URL)) throw new BgsyncError('invalid-url', 'url is required');
    let absolute;
    try {
      absolute = new URL(String(url), this.baseUrl).href;
    } catch {
      throw new BgsyncError('invalid-url', String(url));
    }
    const h = normalizeHeaders(headers);
    const payload = await encodeBody(body, h);
    const args = { queue, url: absolute, method: String(method).toUpperCase(), headers: h };
    if (payload !== undefined) args.body = payload;
    if (priority !== undefined) args.priority = priority;
    if (entity !== undefined) args.entity = entity;
    if (baseVersion !== undefined) args.baseVersion = baseVersion;
    if (editedAt !== undefined) args.editedAt = editedAt;
    if (conflictStrategy !== undefined) args.conflictStrategy = conflictStrategy;
    if (baseDocument !== undefined) args.baseDocument = typeof baseDocument === 'string' ? baseDocument : JSON.stringify(baseDocument);
    const result = await this._request('enqueue', args);
    return { id: result.id, key: result.key };
  }

  /** {counts, state, nextAttemptAt, lastRun, queues} for one queue or all. */
  status(queue) {
    return this._request('status', queue === undefined ? {} : { queue });
  }

  /** Replays now (one queue or all); resolves when the run ended with {remaining}. */
  syncNow(queue, { trigger = 'page' } = {}) {
    const args = { trigger };
    if (queue !== undefined) args.queue = queue;
    return this._request('syncNow', args);
  }

  /** Items for inspection: filter {queue, state, limit}. */
  items(filter = {}) {
    return this._request('items', filter);
  }

  /** The engine's attempt log (time, status, decision, delay), oldest first: filter {id, limit}. */
  attempts(filter = {}) {
    return this._request('attempts', filter);
  }

  deadLetters(queue) {
    return this._request('deadLetters', queue === undefined ? {} : { queue });
  }

  retryDead(id) {
    return this._request('retryDead', { id });
  }

  discardDead(id) {
    return this._request('discardDead', { id });
  }

  conflicts(queue) {
    return this._request('conflicts', queue === undefined ? {} : { queue });
  }

  resolveConflict(id, resolution) {
    return this._request('resolveConflict', { id, resolution });
  }

  /** After fresh credentials exist: items waiting as `auth` become ready again. */
  releaseAuth(queue) {
    return this._request('releaseAuth', queue === undefined ? {} : { queue });
  }

  /**
   * Tells the worker what the app knows about the device, for the queues' constraints:
   * {metered?: boolean, saveData?: boolean, battery?: {level: 0..1, charging: boolean},
   * connectionType?, effectiveType?}; null forgets a field (the browser's reading applies
   * again). Resolves once the worker stored it: {conditions, waitingFor: {queue: reasons}}.
   * A queue it unblocks is replayed at once. Bad fields reject with invalid-argument.
   */
  async reportConditions(report = {}) {
    if (report === null || typeof report !== 'object' || 'source' in report) {
      throw new BgsyncError('invalid-argument', 'reportConditions takes {metered, saveData, battery, connectionType, effectiveType}');
    }
    return this._request('reportConditions', { ...report, source: 'app' });
  }

  /**
   * Asks the browser for `periodicsync` (the worker's pulls, then a replay) at most every
   * minIntervalMs. Resolves false where Periodic Background Sync is missing or refused
   * (it needs an installed app in Chromium); the pages' triggers still apply then.
   */
  async registerPeriodicSync({ minIntervalMs = 12 * 3_600_000 } = {}) {
    const registration = await this.container?.ready;
    if (!registration?.periodicSync) return false;
    try {
      await registration.periodicSync.register(PULL_TAG, { minInterval: minIntervalMs });
      return true;
    } catch {
      return false;
    }
  }

  /** Stops listening (tests, single-page apps tearing down a view). */
  close() {
    for (const off of this._listeners.splice(0)) off();
    if (this._fallbackTimer) clearInterval(this._fallbackTimer);
    this._fallbackTimer = null;
  }

  /** Sends one request and waits for its answer. Type and args follow web/protocol.js. */
  async _request(type, args) {
    // The worker ignores a request that fails these checks (it answers nothing a forger
    // could learn from), so the page applies them first: a typed error now, not a timeout.
    const checked = validateRequest({ bgsync: PROTOCOL_VERSION, type, args });
    if (checked.reason) throw new BgsyncError('invalid-argument', checked.reason);
    const worker = type === 'hello' ? this.worker : await this.ready();
    return this._requests.send(worker, type, args, { batch: type !== 'hello' && Boolean(this.info?.batch) });
  }

  _onBroadcast(e) {
    const msg = e.data;
    if (!msg || msg.bgsync !== PROTOCOL_VERSION || !EVENT_TYPES.includes(msg.event)) return;
    this.dispatchEvent(new CustomEvent(msg.event, { detail: msg.detail }));
  }

  /** Reports navigator.connection and the battery now, and (once) at every change. */
  _reportBrowserConditions() {
    const nav = globalThis.navigator;
    // Chromium fires the connection's `change` whenever its rtt/downlink estimates move,
    // which under load is often: only a change of what is reported goes to the worker
    // (each report is a Cache API write there, beside the queue's own flushes). A new
    // hello (another worker, a restart) hears everything again.
    const sent = {};
    const send = (kind, report) => {
      const key = JSON.stringify(report);
      if (Object.keys(report).length === 0 || sent[kind] === key) return;
      sent[kind] = key;
      this._request('reportConditions', { ...report, source: 'browser' }).catch(() => undefined);
    };
    const connection = nav?.connection;
    if (connection) {
      const read = () => {
        const r = {};
        if (typeof connection.saveData === 'boolean') r.saveData = connection.saveData;
        // Desktop Chromium has no `type`: metered then stays unknown (allowed), not guessed.
        if (CONNECTION_TYPES.includes(connection.type)) r.connectionType = connection.type;
        if (EFFECTIVE_TYPES.includes(connection.effectiveType)) r.effectiveType = connection.effectiveType;
        return r;
      };
      send('connection', read());
      if (!this._watching && typeof connection.addEventListener === 'function') {
        const onChange = () => this._sendConditions?.('connection', read());
        connection.addEventListener('change', onChange);
        this._listeners.push(() => connection.removeEventListener('change', onChange));
      }
    }
    if (typeof nav?.getBattery === 'function') {
      const first = !this._watching;
      Promise.resolve()
        .then(() => nav.getBattery())
        .then((battery) => {
          const read = () => ({ battery: { level: battery.level, charging: battery.charging } });
          const onChange = () => this._sendConditions?.('battery', read());
          send('battery', read());
          if (first && typeof battery.addEventListener === 'function') {
            battery.addEventListener('levelchange', onChange);
            battery.addEventListener('chargingchange', onChange);
            this._listeners.push(() => {
              battery.removeEventListener('levelchange', onChange);
              battery.removeEventListener('chargingchange', onChange);
            });
          }
        })
        .catch(() => undefined); // refused (permissions policy) or missing: stays unknown
    }
    this._sendConditions = send; // the listeners, installed once, use the newest hello's
    this._watching = true;
  }

  _startFallback() {
    const win = globalThis.window;
    const doc = globalThis.document;
    if (!win || this._fallbackTimer) return;
    const kick = (trigger) => this.syncNow(undefined, { trigger }).catch(() => undefined);
    const onOnline = () => kick('online');
    const onVisible = () => {
      if (doc?.visibilityState === 'visible') kick('visible');
    };
    win.addEventListener('online', onOnline);
    doc?.addEventListener('visibilitychange', onVisible);
    this._fallbackTimer = setInterval(() => {
      if (doc?.visibilityState !== 'hidden') kick('timer');
    }, this.options.fallbackIntervalMs);
    this._listeners.push(() => {
      win.removeEventListener('online', onOnline);
      doc?.removeEventListener('visibilitychange', onVisible);
    });
  }
}

function normalizeHeaders(headers) {
  const out = {};
  if (!headers) return out;
  const entries = typeof headers.forEach === 'function' && !Array.isArray(headers) && !(headers.constructor === Object)
    ? (() => {
        const list = [];
        headers.forEach((v, k) => list.push([k, v]));
        return list;
      })()
    : Array.isArray(headers)
      ? headers
      : Object.entries(headers);
  for (const [k, v] of entries) out[String(k).toLowerCase()] = String(v);
  return out;
}

/**
 * Body to a clonable string or ArrayBuffer. Plain objects and arrays become JSON (and set
 * content-type); the bodies fetch() knows (FormData, URLSearchParams, ReadableStream) are
 * encoded as fetch would encode them, content type (with multipart boundary) included.
 * Anything else is refused: JSON.stringify would quietly turn a Map or a class instance
 * into "{}", and the server would receive an empty object.
 */
async function encodeBody(body, headers) {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  if (body instanceof ArrayBuffer) return body.slice(0);
  if (ArrayBuffer.isView(body)) return body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength);
  if (typeof Blob !== 'undefined' && body instanceof Blob) {
    if (!headers['content-type'] && body.type) headers['content-type'] = body.type;
    return body.arrayBuffer();
  }
  if (isFetchBody(body)) {
    const encoded = new Response(body);
    if (!headers['content-type']) {
      const type = encoded.headers.get('content-type');
      if (type) headers['content-type'] = type;
    }
    return encoded.arrayBuffer();
  }
  if (typeof body === 'object' && isPlainData(body)) {
    let text;
    try {
      text = JSON.stringify(body);
    } catch (err) {
      // A BigInt or a cycle: typed, so the page can tell it from a bug of ours.
      throw new BgsyncError('unclonable-body', `the body cannot be encoded as JSON (${err.message})`, { cause: err });
    }
    if (!headers['content-type']) headers['content-type'] = 'application/json';
    return text;
  }
  const kind = typeof body === 'object' ? body.constructor?.name ?? 'object' : typeof body;
  throw new BgsyncError('unclonable-body', `a body of type ${kind}`);
}

function isFetchBody(body) {
  return (typeof FormData !== 'undefined' && body instanceof FormData)
    || (typeof URLSearchParams !== 'undefined' && body instanceof URLSearchParams)
    || (typeof ReadableStream !== 'undefined' && body instanceof ReadableStream);
}

/** A JSON-shaped value: an array or an object whose prototype is Object's or null. */
function isPlainData(value) {
  if (Array.isArray(value)) return true;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
