/**
 * FaultPlan -- how the reference API misbehaves, switchable at run time from the demo's
 * server controls and from tests: down (connections reset), a forced status (e.g. 503
 * with Retry-After), added latency, a random failure rate from a seeded generator (so a
 * test run is reproducible).
 */
export class FaultPlan {
  constructor() {
    this.reset();
  }

  reset() {
    this.down = false; // reset every API connection (a network error for the client)
    this.status = 0; // force this status on every API request (0 = off)
    this.retryAfter = null; // Retry-After value sent with a forced or random failure
    this.latencyMs = 0; // delay before answering
    this.failureRate = 0; // 0..1: share of requests answered with failureStatus
    this.failureStatus = 503;
    this.seed = 1;
    this._rng = mulberry32(this.seed);
  }

  /** Applies a partial setting; unknown keys and wrong types are refused. */
  set(options) {
    const out = {};
    for (const [key, value] of Object.entries(options ?? {})) {
      const ok =
        (key === 'down' && typeof value === 'boolean') ||
        (key === 'status' && Number.isInteger(value) && (value === 0 || (value >= 100 && value <= 599))) ||
        (key === 'retryAfter' && (value === null || typeof value === 'string' || Number.isInteger(value))) ||
        (key === 'latencyMs' && Number.isInteger(value) && value >= 0 && value <= 60_000) ||
        (key === 'failureRate' && typeof value === 'number' && value >= 0 && value <= 1) ||
        (key === 'failureStatus' && Number.isInteger(value) && value >= 100 && value <= 599) ||
        (key === 'seed' && Number.isInteger(value));
      if (!ok) throw new TypeError(`fault plan: bad value for ${key}`);
      out[key] = value;
    }
    Object.assign(this, out);
    if ('seed' in out) this._rng = mulberry32(this.seed);
    return this.describe();
  }

  /** What to do with the next request: {reset} | {status, retryAfter} | null (serve it). */
  decide() {
    if (this.down) return { reset: true };
    if (this.status) return { status: this.status, retryAfter: this.retryAfter };
    if (this.failureRate > 0 && this._rng() < this.failureRate) {
      return { status: this.failureStatus, retryAfter: this.retryAfter };
    }
    return null;
  }

  describe() {
    const { down, status, retryAfter, latencyMs, failureRate, failureStatus, seed } = this;
    return { down, status, retryAfter, latencyMs, failureRate, failureStatus, seed };
  }
}

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
