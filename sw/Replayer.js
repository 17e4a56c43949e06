/**
 * Replayer -- sends the ready items of one queue over HTTP and reports each outcome to the
 * engine. It owns no state between runs: what to send, in which order and what an answer
 * means is the engine's business; this class only moves bytes and keeps to its limits.
 *
 * Invariants:
 *  - at most `concurrency` requests in flight; the engine hands out only the head of each
 *    entity, so per-entity order holds however many run in parallel;
 *  - no new claim once the run's deadline passed: unfinished items stay queued (a claimed
 *    item whose worker dies comes back when its lease expires, with the same key);
 *  - every attempt carries the item's `Idempotency-Key`, the same on every retry;
 *  - a network error, a timeout or a refused fetch is reported as status 0;
 *  - redirects are not followed (see _exchange): a 3xx is a dead letter;
 *  - with `checkUrl`, a URL that fails it (another origin than the worker's and not on
 *    the current allow-list) is never fetched: the item becomes a dead letter.
 */

/**
 * The status logged for an item whose URL the worker refuses to send to: 403, "refused,
 * repeating will not help". The outcome also names the refusal (bgs_outcome's `refused`),
 * so the engine makes the item a dead letter with that reason ('origin-not-allowed' or
 * 'invalid-url') whatever the status. No request was made.
 */
export const REFUSED_STATUS = 403;

/** How often one item may be claimed in one run before the run stops claiming. */
const MAX_CLAIMS_PER_ITEM_PER_RUN = 3;

/** Response headers the engine reads (Retry-After, ETag, ...); others are not stored. */
const REPORTED_HEADERS = ['retry-after', 'etag', 'content-type', 'location', 'last-modified'];
/** Bytes or, for a large body kept outside the database (BlobStore), a Blob. */
function hasPayload(p) {
  if (!p) return false;
  if (typeof Blob !== 'undefined' && p instanceof Blob) return p.size > 0;
  return p.length > 0;
}

function pickHeaders(h) {
  const out = {};
  for (const name of REPORTED_HEADERS) {
    const v = h.get(name);
    if (v !== null) out[name] = v;
  }
  return out;
}

/** Response bodies are kept only where the engine needs them (conflicts), up to this size. */
const MAX_REPORTED_BODY_BYTES = 1 << 20;

export class Replayer {
  /**
   * @param {{engine: object, fetch: Function, concurrency: number, requestTimeoutMs: number,
   *          credentials?: Function, clockMs?: () => number,
   *          checkUrl?: (url: string) => unknown,
   *          onOutcome?: (item: object, decision: object, status: number) => void}} options
   *   checkUrl: throws (a BgsyncError whose code is the reason) for a URL that must not
   *   be fetched. Asked again at every send: an item may have been stored while the
   *   allow-list was wider, or written into the store by something else.
   */
  constructor({ engine, fetch, concurrency, requestTimeoutMs, credentials, resolveConflict, clockMs, onOutcome, checkUrl, batch = false }) {
    this.engine = engine;
    this.batch = batch; // the queue has a batch endpoint: one request carries many items
    this.fetch = fetch;
    this.concurrency = concurrency;
    this.requestTimeoutMs = requestTimeoutMs;
    this.credentials = credentials;
    this.resolveConflict = resolveConflict; // the app's resolver for strategy 'custom'
    this.clockMs = clockMs ?? (() => Date.now());
    this.onOutcome = onOutcome ?? (() => {});
    this.checkUrl = checkUrl ?? null;
  }

  /**
   * Why `url` must not be fetched ('origin-not-allowed', 'invalid-url', ...), or null. The
   * reason is the checker's error code when it is one the engine takes as a refusal.
   */
  _refusal(url) {
    if (!this.checkUrl) return null;
    try {
      this.checkUrl(url);
      return null;
    } catch (err) {
      return /^[a-z0-9-]{1,40}$/.test(err?.code ?? '') ? err.code : 'origin-not-allowed';
    }
  }

  /**
   * Replays `queue` until nothing is ready or `deadlineMs` (on clockMs) passed.
   * @returns {Promise<{attempted: number, stoppedByDeadline: boolean, states: Record<string, number>}>}
   */
  async run(queue, { deadlineMs, ahead = null }) {
    if (this.batch) return this._runBatches(queue, { deadlineMs });
    const summary = { attempted: 0, stoppedByDeadline: false, states: {} };
    const inflight = new Set(); // requests holding a concurrency slot
    const tails = new Set(); // attempts whose outcome is still being made durable
    const sends = new Map(); // item id -> claims in this run
    let drained = false; // the last claim found nothing ready
    let looping = false; // an item came back too often (a zero backoff): stop claiming
    // A head start (HeadStart.js): claimed already, its request under way; it holds a slot.
    const start = (item, sent) => {
      summary.attempted++;
      const slot = new Promise((release) => {
        const tail = this._attempt(item, summary, release, sent).finally(() => {
          release();
          tails.delete(tail);
        });
        tails.add(tail);
      });
      const p = slot.then(() => inflight.delete(p));
      inflight.add(p);
    };
    if (ahead) {
      sends.set(ahead.item.id, 1);
      start(ahead.item, ahead.sent);
    }
    for (;;) {
      const free = this.concurrency - inflight.size;
      if (free > 0 && !drained) {
        if (this.clockMs() >= deadlineMs) {
          summary.stoppedByDeadline = true;
          drained = true;
        } else {
          const items = await this.engine.claim(queue, free, { early: true });
          if (items.length < free) drained = true;
          for (const item of items) {
            // A re-send after a conflict legitimately comes back once or twice; more means
            // a queue without backoff answering failures: leave the rest to the next run.
            sends.set(item.id, (sends.get(item.id) ?? 0) + 1);
            if (sends.get(item.id) > MAX_CLAIMS_PER_ITEM_PER_RUN) looping = true;
            // The slot frees as soon as the outcome is applied in memory; writing it down
            // (the flush) goes on in `tails` and shares a flush with the next claim.
            start(item);
          }
          if (looping) drained = true;
          if (items.length > 0) continue;
        }
      }
      if (inflight.size === 0 && tails.size === 0) break;
      await Promise.race([...inflight, ...tails]);
      // A finished head may have released the next item of its entity.
      if (!summary.stoppedByDeadline && !looping) drained = false;
    }
    return summary;
  }

  /** Batches go one at a time: each already carries up to the queue's batch.maxItems items. */
  async _runBatches(queue, { deadlineMs }) {
    // Up to `concurrency` batch requests at once: a batch holds only entity heads, so two
    // batches in flight never carry two changes of one entity.
    const summary = { attempted: 0, stoppedByDeadline: false, states: {} };
    const inflight = new Set();
    const sends = new Map(); // item id -> claims in this run (see run())
    let drained = false;
    let looping = false;
    for (;;) {
      if (!drained && inflight.size < this.concurrency) {
        if (this.clockMs() >= deadlineMs) {
          summary.stoppedByDeadline = true;
          drained = true;
        } else {
          const request = await this.engine.claimBatch(queue, { early: true }); // {method, url, headers, items, body}
          if (!request?.items || request.items.length === 0) {
            drained = true;
          } else {
            summary.attempted += request.items.length;
            for (const i of request.items) {
              sends.set(i.id, (sends.get(i.id) ?? 0) + 1);
              if (sends.get(i.id) > MAX_CLAIMS_PER_ITEM_PER_RUN) looping = true;
            }
            if (looping) drained = true;
            const p = this._sendBatch(request, summary).finally(() => inflight.delete(p));
            inflight.add(p);
            continue;
          }
        }
      }
      if (inflight.size === 0) break;
      await Promise.race(inflight);
      if (!summary.stoppedByDeadline && !looping) drained = false;
    }
    return summary;
  }

  async _sendBatch(claimed, summary) {
    const request = await this._withoutRefused(claimed, summary);
    if (!request) return;
    let status = 0;
    let headers = {};
    let resBody;
    try {
      const extra = this.credentials ? await this.credentials({ item: request, refresh: false }) : null;
      const { res, bytes } = await this._exchange(request, { ...request.headers, ...(extra ?? {}) }, request.body, true);
      status = res.status;
      headers = pickHeaders(res.headers);
      resBody = bytes;
    } catch {
      status = 0;
    }
    const report = { items: request.items.map((i) => ({ id: i.id, attempt: i.attempt })), status, headers };
    const out = await this.engine.batchOutcome(report, resBody);
    const byId = new Map(request.items.map((i) => [i.id, i]));
    for (const result of out.results ?? []) {
      const decision = await this._resolveCustom(result);
      const state = decision.error ? 'unknown' : decision.state;
      summary.states[state] = (summary.states[state] ?? 0) + 1;
      this.onOutcome(byId.get(decision.id) ?? { id: decision.id }, { ...decision, state }, status);
    }
  }

  /**
   * Reports the items of a claimed batch whose URL (or the batch endpoint's) is refused as
   * dead letters, and returns the request for the others: its body rebuilt without them,
   * or null when none is left. Nothing of a refused item goes out, not even inside a batch.
   */
  async _withoutRefused(request, summary) {
    const endpointRefused = this._refusal(request.url);
    const refused = new Map(); // item id -> reason
    for (const i of request.items) {
      const reason = endpointRefused ?? this._refusal(i.url);
      if (reason) refused.set(i.id, reason);
    }
    if (refused.size === 0) return request;
    for (const i of request.items) {
      if (refused.has(i.id)) await this._reportRefused(i, refused.get(i.id), summary);
    }
    const items = request.items.filter((i) => !refused.has(i.id));
    if (items.length === 0) return null;
    const keys = new Set(items.map((i) => i.key));
    const doc = JSON.parse(new TextDecoder().decode(request.body));
    doc.items = doc.items.filter((x) => keys.has(x.key));
    return { ...request, items, body: new TextEncoder().encode(JSON.stringify(doc)) };
  }

  /** A refused item: not sent, reported as REFUSED_STATUS; the decision names the reason. */
  async _reportRefused(item, reason, summary) {
    let decision;
    try {
      decision = await this.engine.outcome({ id: item.id, attempt: item.attempt, status: REFUSED_STATUS, headers: {}, refused: reason });
      decision = { ...decision, refused: true };
    } catch (err) {
      decision = { id: item.id, state: 'unknown', reason: err?.code ?? String(err) };
    }
    summary.states[decision.state] = (summary.states[decision.state] ?? 0) + 1;
    this.onOutcome(item, decision, REFUSED_STATUS);
  }

  /**
   * Sends one item and reports its outcome; calls release() once the slot can be reused.
   * `sent`: the answer of a request already made for this attempt (a head start).
   */
  async _attempt(item, summary, release = () => {}, sent = null) {
    const refusal = sent ? null : this._refusal(item.url); // a head start was checked before it went
    if (refusal) {
      const reported = this._reportRefused(item, refusal, summary);
      release();
      return reported;
    }
    let status = 0;
    let headers = {};
    let body;
    try {
      ({ status, headers, body } = await (sent ?? this._send(item)));
    } catch {
      status = 0; // network error, timeout, CORS refusal: all retryable
    }
    let decision;
    try {
      // outcome() applies the decision at once (it is in memory when the call returns) and
      // resolves when it is durable: the next claim can already see a released entity head.
      const reported = this.engine.outcome({ id: item.id, attempt: item.attempt, status, headers }, body);
      release();
      decision = await reported;
      if (decision.conflict?.needsRemote && typeof this.engine.conflictRemote === 'function') {
        decision = await this._fetchRemote(item, decision);
      }
      decision = await this._resolveCustom(decision);
    } catch (err) {
      // stale-outcome: the lease expired and another run owns the item now; nothing to do.
      decision = { id: item.id, state: 'unknown', reason: err?.code ?? String(err) };
    }
    summary.states[decision.state] = (summary.states[decision.state] ?? 0) + 1;
    this.onOutcome(item, decision, status);
  }

  /** One attempt's request (and a refresh after 401); `ticketBody`: its body, when no engine has it yet. */
  async _send(item, ticketBody) {
    const method = item.method;
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const payload = hasBody ? (ticketBody ?? this.engine.body(item.id)) : undefined;
    const base = { ...(item.headers ?? {}), 'idempotency-key': item.key };
    // The version the change was made from (reference conflict protocol: If-Match).
    if (item.baseVersion) base['if-match'] = item.baseVersion;
    let extra = this.credentials ? await this.credentials({ item, refresh: false }) : null;
    const keep = (status) => status === 409 || status === 412;
    let { res, bytes } = await this._exchange(item, { ...base, ...(extra ?? {}) }, payload, keep);
    if (res.status === 401 && this.credentials) {
      // One refresh per attempt; a second 401 goes to the engine, which parks the item as `auth`.
      extra = await this.credentials({ item, refresh: true });
      if (extra) ({ res, bytes } = await this._exchange(item, { ...base, ...extra }, payload, keep));
    }
    const headers = pickHeaders(res.headers);
    // Conflict documents go to the engine (up to a size); other bodies are not needed.
    const body = bytes && bytes.length <= MAX_REPORTED_BODY_BYTES ? bytes : undefined;
    return { status: res.status, headers, body };
  }

  /**
   * A conflict parked for the app's resolver (strategy 'custom'): the worker's
   * resolveConflict hook decides now, from the inbox record ({base, local, remote, fields,
   * merged, ...}), with {keep: 'local'|'remote'}, {document} or nothing (the conflict stays
   * in the inbox for the app). A hook that throws or answers what the engine refuses
   * leaves the conflict parked: a resolver's bug never loses the change.
   */
  async _resolveCustom(decision) {
    const c = decision?.conflict;
    if (!this.resolveConflict || !c?.custom || c.state !== 'open' || c.needsRemote) return decision;
    try {
      const [record] = this.engine.conflicts({ itemId: decision.id, state: 'open' });
      if (!record) return decision;
      const resolution = await this.resolveConflict(record);
      if (!resolution) return decision;
      const resolved = await this.engine.conflictResolve(record.id, resolution);
      return { ...decision, state: resolved.itemState ?? decision.state, conflict: resolved };
    } catch (err) {
      return { ...decision, resolverError: String(err?.message ?? err) };
    }
  }

  /** The 409/412 carried no usable document: GET the resource and hand it to the engine. */
  async _fetchRemote(item, decision) {
    try {
      const extra = this.credentials ? await this.credentials({ item, refresh: false }) : null;
      const { res, bytes } = await this._exchange({ url: item.url, method: 'GET' }, { accept: 'application/json', ...(extra ?? {}) }, undefined, () => true);
      const gone = res.status === 404 || res.status === 410;
      if (!res.ok && !gone) return decision;
      const doc = gone ? null : new TextDecoder().decode(bytes);
      const conflict = await this.engine.conflictRemote(decision.conflict.id, doc, gone ? null : res.headers.get('etag'));
      return { ...decision, state: conflict.itemState ?? decision.state, conflict };
    } catch (err) {
      // Still parked; the app can resolve it by hand. Why the fetch did not help goes with
      // the decision: the engine's typed refusal of what was fetched (invalid-document:
      // not a JSON object, too deep, over 1 MiB) or the network error.
      return { ...decision, remoteError: err?.code ?? String(err?.message ?? err) };
    }
  }

  /**
   * One request and its whole response within requestTimeoutMs: the timer runs until the
   * body has been read, because a server that sends headers and then stalls would
   * otherwise hold the run (and the event) forever. `keepBody(status)` says whether the
   * caller needs the bytes; other bodies are read to the end and dropped (connection reuse).
   * @returns {Promise<{res: Response, bytes: Uint8Array|undefined}>}
   */
  async _exchange(item, headers, payload, keepBody) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.requestTimeoutMs);
    try {
      const res = await this.fetch(item.url, {
        method: item.method,
        headers,
        body: hasPayload(payload) ? payload : undefined,
        credentials: 'same-origin',
        cache: 'no-store',
        // Never follow: a browser's opaque redirect hides where it leads, so following could
        // carry the body, the Idempotency-Key and fresh credentials to an origin that is not
        // allowed. A redirect is reported as its 3xx (302 when opaque): a dead letter.
        redirect: 'manual',
        signal: controller.signal,
      });
      if (res.type === 'opaqueredirect') {
        return { res: { status: 302, ok: false, headers: new Headers() }, bytes: undefined };
      }
      const wanted = keepBody === true || (typeof keepBody === 'function' && keepBody(res.status));
      const bytes = new Uint8Array(await res.arrayBuffer());
      return { res, bytes: wanted ? bytes : undefined };
    } finally {
      clearTimeout(timer);
    }
  }
}
