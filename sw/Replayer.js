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
 *  - a network error, a timeout or a refused fetch is reported as status 0.
 */

/** Response headers the engine reads (Retry-After, ETag, ...); others are not stored. */
const REPORTED_HEADERS = ['retry-after', 'etag', 'content-type', 'location', 'last-modified'];
/** Response bodies are kept only where the engine needs them (conflicts), up to this size. */
const MAX_REPORTED_BODY_BYTES = 1 << 20;

export class Replayer {
  /**
   * @param {{engine: object, fetch: Function, concurrency: number, requestTimeoutMs: number,
   *          credentials?: Function, clockMs?: () => number,
   *          onOutcome?: (item: object, decision: object, status: number) => void}} options
   */
  constructor({ engine, fetch, concurrency, requestTimeoutMs, credentials, clockMs, onOutcome }) {
    this.engine = engine;
    this.fetch = fetch;
    this.concurrency = concurrency;
    this.requestTimeoutMs = requestTimeoutMs;
    this.credentials = credentials;
    this.clockMs = clockMs ?? (() => Date.now());
    this.onOutcome = onOutcome ?? (() => {});
  }

  /**
   * Replays `queue` until nothing is ready or `deadlineMs` (on clockMs) passed.
   * @returns {Promise<{attempted: number, stoppedByDeadline: boolean, states: Record<string, number>}>}
   */
  async run(queue, { deadlineMs }) {
    const summary = { attempted: 0, stoppedByDeadline: false, states: {} };
    const inflight = new Set();
    let drained = false; // the last claim found nothing ready
    for (;;) {
      const free = this.concurrency - inflight.size;
      if (free > 0 && !drained) {
        if (this.clockMs() >= deadlineMs) {
          summary.stoppedByDeadline = true;
          drained = true;
        } else {
          const items = await this.engine.claim(queue, free);
          if (items.length < free) drained = true;
          for (const item of items) {
            summary.attempted++;
            const p = this._attempt(item, summary).finally(() => inflight.delete(p));
            inflight.add(p);
          }
          if (items.length > 0) continue;
        }
      }
      if (inflight.size === 0) break;
      await Promise.race(inflight);
      // A finished head may have released the next item of its entity.
      if (!summary.stoppedByDeadline) drained = false;
    }
    return summary;
  }

  async _attempt(item, summary) {
    let status = 0;
    let headers = {};
    let body;
    try {
      ({ status, headers, body } = await this._send(item));
    } catch {
      status = 0; // network error, timeout, CORS refusal: all retryable
    }
    let decision;
    try {
      decision = await this.engine.outcome({ id: item.id, attempt: item.attempt, status, headers }, body);
    } catch (err) {
      // stale-outcome: the lease expired and another run owns the item now; nothing to do.
      decision = { id: item.id, state: 'unknown', reason: err?.code ?? String(err) };
    }
    summary.states[decision.state] = (summary.states[decision.state] ?? 0) + 1;
    this.onOutcome(item, decision, status);
  }

  async _send(item) {
    const method = item.method;
    const hasBody = method !== 'GET' && method !== 'HEAD';
    const payload = hasBody ? this.engine.body(item.id) : undefined;
    const base = { ...(item.headers ?? {}), 'idempotency-key': item.key };
    let extra = this.credentials ? await this.credentials({ item, refresh: false }) : null;
    let res = await this._fetch(item, { ...base, ...(extra ?? {}) }, payload);
    if (res.status === 401 && this.credentials) {
      // One refresh per attempt; a second 401 goes to the engine, which parks the item as `auth`.
      extra = await this.credentials({ item, refresh: true });
      if (extra) res = await this._fetch(item, { ...base, ...extra }, payload);
    }
    const headers = {};
    for (const name of REPORTED_HEADERS) {
      const v = res.headers.get(name);
      if (v !== null) headers[name] = v;
    }
    let body;
    if (res.status === 409 || res.status === 412) {
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (bytes.length <= MAX_REPORTED_BODY_BYTES) body = bytes;
    } else {
      // Drain so the connection can be reused; the body itself is not needed.
      await res.arrayBuffer().catch(() => undefined);
    }
    return { status: res.status, headers, body };
  }

  async _fetch(item, headers, payload) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.requestTimeoutMs);
    try {
      return await this.fetch(item.url, {
        method: item.method,
        headers,
        body: payload && payload.length > 0 ? payload : undefined,
        credentials: 'same-origin',
        cache: 'no-store',
        redirect: 'follow',
        signal: controller.signal,
      });
    } finally {
      clearTimeout(timer);
    }
  }
}
