/**
 * ReferenceApi -- the API a bgsync app talks to, as the reference protocol describes it:
 *  - every write may carry an `Idempotency-Key`; a repeated key returns the first
 *    response and applies nothing twice (so at-least-once delivery is exactly-once in
 *    effect);
 *  - collections under /api/<collection>: POST creates (201), GET lists;
 *    /api/<collection>/<id>: GET, PUT, PATCH (JSON merge patch), DELETE; every entity has
 *    a version (ETag); `If-Match` with another version answers 412 with the current
 *    document and its ETag;
 *  - POST /api/_batch: the batch endpoint of the reference protocol (a queue's `batch`
 *    option; core/include/bgsync.h, bgs_claim_batch / bgs_batch_outcome): `{"items":
 *    [{key, method, url, headers, body | bodyBase64}]}` → `{"results": [{key, status,
 *    headers, body}]}`, each item applied as if it had come alone (its own idempotency
 *    key, route and log entry), under one latency and one injected fault.
 * Every request that reaches it is logged (method, path, key, status, applied), which is
 * what tests judge delivery by. Storage is a DataStore (memory here; the demo may swap it).
 */
import { FaultPlan } from './FaultPlan.js';
import { MemoryDataStore } from './MemoryDataStore.js';

const MAX_BODY_BYTES = 4 * 1024 * 1024;

export class ReferenceApi {
  constructor({ store = new MemoryDataStore(), now = () => Date.now() } = {}) {
    this.store = store;
    this.now = now;
    this.faults = new FaultPlan();
    this.rejectedAuthorization = null; // see rejectAuthorization()
    this.log = []; // {seq, at, method, path, key, status, applied}
    this.listeners = new Set(); // called with each log entry (demo live view, tests)
  }

  reset() {
    this.faults.reset();
    this.rejectedAuthorization = null;
    this.log = [];
    this.store.clear();
  }

  /**
   * A fault beside the FaultPlan's: a request whose Authorization header is exactly
   * `header` (a stale token) is answered 401 and nothing else is; null turns it off.
   * With it a test sees a credentials refresh succeed (401 for the old token, then the
   * same Idempotency-Key applied with the new one). Cleared by reset().
   */
  rejectAuthorization(header) {
    if (header !== null && (typeof header !== 'string' || header === '')) {
      throw new TypeError('rejectAuthorization: a non-empty header value, or null');
    }
    this.rejectedAuthorization = header;
  }

  /** Handles a request under /api. Returns true when it answered. */
  async handle(req, res, url) {
    const decision = this.faults.decide();
    if (this.faults.latencyMs > 0) await sleep(this.faults.latencyMs);
    const key = req.headers['idempotency-key'] ?? null;
    if (decision?.reset) {
      this._record(req.method, url.pathname, key, 0, false);
      req.socket.destroy();
      return true;
    }
    let body;
    try {
      body = await readBody(req);
    } catch (err) {
      return this._send(res, req, url, key, 413, { error: String(err.message) }, false);
    }
    if (url.pathname === '/api/_batch' && req.method === 'POST' && !decision?.status) return this._batch(req, res, url, body);
    if (decision?.status) {
      const headers = decision.retryAfter != null ? { 'retry-after': String(decision.retryAfter) } : {};
      return this._send(res, req, url, key, decision.status, { error: 'injected failure' }, false, headers);
    }
    // Before the idempotency lookup, as a real API checks credentials first; not stored
    // under the key, so the same key with fresh credentials is applied.
    if (this.rejectedAuthorization !== null && req.headers.authorization === this.rejectedAuthorization) {
      return this._send(res, req, url, key, 401, { error: 'stale credentials' }, false, { 'www-authenticate': 'Bearer error="invalid_token"' });
    }
    if (key && this.store.getIdempotent(key)) {
      const first = this.store.getIdempotent(key);
      return this._send(res, req, url, key, first.status, first.body, false, { ...first.headers, 'idempotent-replay': 'true' });
    }
    const result = this._route(req.method, url.pathname, req.headers, body);
    if (key && req.method !== 'GET' && result.status < 500) {
      this.store.putIdempotent(key, { status: result.status, body: result.body, headers: result.headers ?? {} });
    }
    return this._send(res, req, url, key, result.status, result.body, result.applied, result.headers);
  }

  _batch(req, res, url, raw) {
    let items;
    try {
      items = JSON.parse(raw.toString('utf8')).items;
      if (!Array.isArray(items)) throw new Error('no items');
    } catch {
      return this._send(res, req, url, null, 400, { error: 'batch body must be {"items": [...]}' }, false);
    }
    const results = [];
    for (const it of items) {
      let path;
      try {
        path = new URL(it.url, 'http://x').pathname;
      } catch {
        results.push({ key: it?.key ?? null, status: 400, headers: {}, body: JSON.stringify({ error: 'bad url' }) });
        continue;
      }
      const key = typeof it.key === 'string' ? it.key : null;
      const prior = key ? this.store.getIdempotent(key) : null;
      if (prior) {
        this._record(it.method, path, key, prior.status, false);
        results.push({ key, status: prior.status, headers: prior.headers, body: JSON.stringify(prior.body) });
        continue;
      }
      const body = it.bodyBase64 ? Buffer.from(it.bodyBase64, 'base64') : Buffer.from(it.body ?? '', 'utf8');
      const headers = Object.fromEntries(Object.entries(it.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      const r = this._route(it.method, path, headers, body);
      if (key && it.method !== 'GET' && r.status < 500) {
        this.store.putIdempotent(key, { status: r.status, body: r.body, headers: r.headers ?? {} });
      }
      this._record(it.method, path, key, r.status, !!r.applied);
      results.push({ key, status: r.status, headers: r.headers ?? {}, body: r.body == null ? undefined : JSON.stringify(r.body) });
    }
    return this._send(res, req, url, null, 200, { results }, false);
  }

  _route(method, path, headers, raw) {
    const parts = path.split('/').filter(Boolean); // ['api', collection, id?]
    if (parts.length < 2 || parts.length > 3 || !/^[a-z][a-z0-9-]{0,40}$/.test(parts[1])) {
      return { status: 404, body: { error: 'no such resource' } };
    }
    const [, collection, id] = parts;
    let doc;
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      try {
        // HTML forms post urlencoded fields; they are stored as a flat object of strings.
        const form = /^application\/x-www-form-urlencoded\b/i.test(headers['content-type'] ?? '');
        doc = form ? Object.fromEntries(new URLSearchParams(raw.toString('utf8')))
          : raw.length ? JSON.parse(raw.toString('utf8')) : {};
      } catch {
        return { status: 400, body: { error: 'body is not JSON' } };
      }
      if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
        return { status: 400, body: { error: 'body must be a JSON object' } };
      }
    }
    if (!id) {
      if (method === 'GET') return { status: 200, body: this.store.list(collection) };
      if (method === 'POST') {
        const created = this.store.create(collection, doc, this.now());
        return { status: 201, body: created.doc, headers: { etag: etag(created.version) }, applied: true };
      }
      return { status: 405, body: { error: 'method not allowed' } };
    }
    const current = this.store.get(collection, id);
    const ifMatch = headers['if-match'];
    if (ifMatch && method !== 'GET') {
      if (!current || ifMatch !== etag(current.version)) {
        return current
          ? { status: 412, body: current.doc, headers: { etag: etag(current.version) } }
          : { status: 412, body: { error: 'no such entity' } };
      }
    }
    switch (method) {
      case 'GET':
        return current
          ? { status: 200, body: current.doc, headers: { etag: etag(current.version) } }
          : { status: 404, body: { error: 'not found' } };
      case 'PUT': {
        const saved = this.store.put(collection, id, doc, this.now());
        return { status: current ? 200 : 201, body: saved.doc, headers: { etag: etag(saved.version) }, applied: true };
      }
      case 'PATCH': {
        if (!current) return { status: 404, body: { error: 'not found' } };
        const saved = this.store.put(collection, id, mergePatch(current.doc, doc), this.now());
        return { status: 200, body: saved.doc, headers: { etag: etag(saved.version) }, applied: true };
      }
      case 'DELETE':
        if (!current) return { status: 404, body: { error: 'not found' } };
        this.store.remove(collection, id);
        return { status: 204, body: null, applied: true };
      default:
        return { status: 405, body: { error: 'method not allowed' } };
    }
  }

  _send(res, req, url, key, status, body, applied, headers = {}) {
    this._record(req.method, url.pathname, key, status, applied);
    const payload = body == null ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...headers,
      'content-type': 'application/json',
      'cache-control': 'no-store',
      ...(headers.etag ? { 'access-control-expose-headers': 'etag' } : {}),
    });
    res.end(status === 204 ? undefined : payload);
    return true;
  }

  _record(method, path, key, status, applied) {
    const entry = { seq: this.log.length + 1, at: this.now(), method, path, key, status, applied };
    this.log.push(entry);
    for (const fn of this.listeners) fn(entry);
  }

  /** Log entries that were applied (what the server really holds), in arrival order. */
  appliedKeys() {
    return this.log.filter((e) => e.applied).map((e) => e.key);
  }
}

export function etag(version) {
  return `"v${version}"`;
}

/** RFC 7396 JSON merge patch. */
export function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
