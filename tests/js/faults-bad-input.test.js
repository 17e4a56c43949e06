/**
 * Bad input from pages, in Node: the real SyncClient talks to a real BgsyncWorker (the
 * wasm engine over a MemoryStore) through a fake ServiceWorkerContainer whose postMessage
 * structured-clones like a browser does (and throws DataCloneError where a browser would).
 *
 * A table of malformed calls and raw messages; for each: the outcome (a typed BgsyncError
 * code, or "ignored" for what the worker drops without an answer), and no change of state
 * -- the items (as stored) and the number of store writes are what they were, and
 * Object.prototype is untouched.
 *
 * Defined outcomes (what this table pins down):
 *  - the page side refuses what it can check itself: invalid-url, unclonable-body, and
 *    invalid-argument for a call that fails validateRequest (web/protocol.js);
 *  - the worker answers typed errors for well-formed requests it cannot take:
 *    origin-not-allowed, invalid-url, unknown-queue, body-too-large, invalid-argument,
 *    not-found, protocol-mismatch (another protocol version);
 *  - the worker IGNORES a raw message that fails validateRequest: no answer, a logged
 *    reason (RAW_CASES). SyncClient never sends one: it checks its calls first, so the page
 *    gets invalid-argument at once instead of a timeout.
 */
import { ORIGIN, pageAndWorker } from './support/pageAndWorker.js';
import { WASM_DIR } from './support/loadWasm.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const CLIENT_TIMEOUT_MS = 1500; // an unanswered call would fail after this long

let wasmModule;
let t;
beforeAll(async () => {
  wasmModule = await WebAssembly.compile(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
  t = pageAndWorker(wasmModule, { timeoutMs: CLIENT_TIMEOUT_MS });
  await t.client.ready();
  // Something in the queue, so "no change" is a real comparison.
  await t.client.enqueue({ url: '/api/notes', body: { first: true }, entity: 'note:1' });
});
afterAll(() => {
  t?.client.close();
});

async function snapshot() {
  const engine = await t.worker.engine();
  // Replays started by earlier enqueues (the fetch fails: offline) end first.
  for (let i = 0; i < 10 && t.worker.runs.size > 0; i++) {
    await Promise.allSettled([...t.worker.runs.values()].map((r) => r.promise));
  }
  await engine.settle();
  return {
    items: JSON.stringify(engine.items({ limit: 1000 })),
    writes: engine.store.writes,
  };
}

/** [name, call(client, t) → promise, expected code | 'ignored'] */
const big = 'x'.repeat(17 * 1024 * 1024);
const circular = {};
circular.self = circular;
const CLIENT_CASES = [
  ['enqueue without a url', (c) => c.enqueue({}), 'invalid-url'],
  ['url of the wrong type', (c) => c.enqueue({ url: 42 }), 'invalid-url'],
  ['url that does not parse', (c) => c.enqueue({ url: 'http://[' }), 'invalid-url'],
  ['ftp url', (c) => c.enqueue({ url: 'ftp://app.test/x' }), 'invalid-url'],
  ['javascript: url', (c) => c.enqueue({ url: 'javascript:alert(1)' }), 'invalid-url'],
  ['data: url', (c) => c.enqueue({ url: 'data:text/plain,hi' }), 'invalid-url'],
  ['off-origin url', (c) => c.enqueue({ url: 'https://evil.test/steal' }), 'origin-not-allowed'],
  ['same host, other port', (c) => c.enqueue({ url: 'https://app.test:8443/x' }), 'origin-not-allowed'],
  ['unknown queue', (c) => c.enqueue({ url: '/api/x', queue: 'nope' }), 'unknown-queue'],
  ['a body that is a function', (c) => c.enqueue({ url: '/api/x', body: () => 1 }), 'unclonable-body'],
  ['a body that is a symbol', (c) => c.enqueue({ url: '/api/x', body: Symbol('s') }), 'unclonable-body'],
  ['a body over maxBodyBytes (17 MiB)', (c) => c.enqueue({ url: '/api/x', body: big }), 'body-too-large'],
  ['baseDocument that is not JSON', (c) => c.enqueue({ url: '/api/x', baseDocument: '{nope' }), 'invalid-argument'],
  ['retryDead of an unknown id', (c) => c.retryDead(999_999), 'not-found'],
  ['discardDead of an unknown id', (c) => c.discardDead(999_999), 'not-found'],
  ['resolveConflict of an unknown id', (c) => c.resolveConflict(999_999, { keep: 'local' }), 'not-found'],
  ['status of an unknown queue', (c) => c.status('nope'), 'unknown-queue'],
  ['syncNow of an unknown queue', (c) => c.syncNow('nope'), 'unknown-queue'],
  // Refused by validateRequest in the page (the worker would not answer; see the file comment).
  ['unknown method', (c) => c.enqueue({ url: '/api/x', method: 'FOO' }), 'invalid-argument'],
  ['TRACE method', (c) => c.enqueue({ url: '/api/x', method: 'TRACE' }), 'invalid-argument'],
  ['unknown priority', (c) => c.enqueue({ url: '/api/x', priority: 'urgent' }), 'invalid-argument'],
  ['header name with a space', (c) => c.enqueue({ url: '/api/x', headers: { 'bad name': 'x' } }), 'invalid-argument'],
  ['header value with CRLF', (c) => c.enqueue({ url: '/api/x', headers: { 'x-a': 'a\r\nInjected: 1' } }), 'invalid-argument'],
  ['65 headers', (c) => c.enqueue({ url: '/api/x', headers: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`x-h${i}`, 'v'])) }), 'invalid-argument'],
  ['entity of 300 characters', (c) => c.enqueue({ url: '/api/x', entity: 'e'.repeat(300) }), 'invalid-argument'],
  ['url of 9000 characters', (c) => c.enqueue({ url: `/api/${'u'.repeat(9000)}` }), 'invalid-argument'],
  ['editedAt NaN', (c) => c.enqueue({ url: '/api/x', editedAt: NaN }), 'invalid-argument'],
  ['conflictStrategy a number', (c) => c.enqueue({ url: '/api/x', conflictStrategy: 42 }), 'invalid-argument'],
  ['retryDead of id -1', (c) => c.retryDead(-1), 'invalid-argument'],
  ['discardDead of a string id', (c) => c.discardDead('1'), 'invalid-argument'],
  ['items with limit 0', (c) => c.items({ limit: 0 }), 'invalid-argument'],
  ['resolveConflict without a resolution', (c) => c.resolveConflict(1, 'local'), 'invalid-argument'],
];

describe('Bad input from pages (SyncClient → BgsyncWorker in Node)', () => {
  it.each(CLIENT_CASES)('%s → %s, nothing changes', async (name, call, expected) => {
    const before = await snapshot();
    let code = 'resolved';
    try {
      await call(t.client, t);
    } catch (err) {
      code = err?.name === 'BgsyncError' ? err.code : `untyped ${err?.name}: ${err?.message}`;
    }
    expect(code).toBe(expected);
    expect(await snapshot()).toEqual(before);
    expect({}.polluted).toBeUndefined();
  });

  it('headers named __proto__ or constructor neither pollute nor reach the queue', async () => {
    const headers = JSON.parse('{"__proto__": {"polluted": "yes"}, "constructor": "x", "x-ok": "1"}');
    const r = await t.client.enqueue({ url: '/api/proto', headers, body: 'b' });
    const item = (await t.worker.engine()).items({ limit: 1000 }).find((i) => i.id === r.id);
    expect(item).toBeDefined();
    expect({}.polluted).toBeUndefined();
    expect(Object.prototype.polluted).toBeUndefined();
    const engine = await t.worker.engine();
    await engine.deadDiscard?.(r.id).catch(() => undefined);
  });

  // Found by this table: page-side bodies that JSON.stringify cannot encode escaped as
  // plain TypeErrors, not BgsyncError('unclonable-body'); fixed in web/SyncClient.js encodeBody.
  it('a body JSON cannot encode (BigInt, a cycle, a Map) is an unclonable-body error', async () => {
    for (const body of [{ n: 1n }, circular, new Map([['a', 1]])]) {
      const err = await t.client.enqueue({ url: '/api/x', body }).catch((e) => e);
      expect(err).toMatchObject({ name: 'BgsyncError', code: 'unclonable-body' });
    }
  });
});

/** Raw messages, as a script on the page (or another library) could post them. */
const RAW_CASES = [
  ['a string', 'hello', 'silent'],
  ['null', null, 'silent'],
  ['an array', [1, 2], 'silent'],
  ['an object without bgsync', { type: 'enqueue' }, 'silent'],
  ['protocol version 2', { bgsync: 2, type: 'hello' }, 'protocol-mismatch'],
  ['protocol version 0', { bgsync: 0, type: 'status' }, 'protocol-mismatch'],
  ['protocol version "1" (a string)', { bgsync: '1', type: 'hello' }, 'ignored'],
  ['unknown type', { bgsync: 1, type: 'dropTables' }, 'ignored'],
  ['type __proto__', { bgsync: 1, type: '__proto__' }, 'ignored'],
  ['args an array', { bgsync: 1, type: 'status', args: [] }, 'ignored'],
  ['args with a __proto__ key', { bgsync: 1, type: 'enqueue', args: JSON.parse(`{"__proto__": {"polluted": 1}, "queue": "default", "method": "POST", "url": "${ORIGIN}/api/p", "headers": {}}`) }, 'ok'],
  ['enqueue args with a class instance body', { bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'POST', url: `${ORIGIN}/api/x`, body: new Date() } }, 'ignored'],
  ['testClock when it is not enabled', { bgsync: 1, type: 'testClock', args: { offsetMs: 1e12 } }, 'bad-message'],
  ['batch whose calls is not an array', { bgsync: 1, type: 'batch', args: { calls: { 0: { type: 'status' } } } }, 'ignored'],
  ['batch of no calls', { bgsync: 1, type: 'batch', args: { calls: [] } }, 'ignored'],
  ['batch of 1001 calls', { bgsync: 1, type: 'batch', args: { calls: Array.from({ length: 1001 }, () => ({ type: 'status' })) } }, 'ignored'],
  ['batch holding a hello', { bgsync: 1, type: 'batch', args: { calls: [{ type: 'hello' }] } }, 'ignored'],
  ['batch holding a batch', { bgsync: 1, type: 'batch', args: { calls: [{ type: 'batch', args: { calls: [{ type: 'status' }] } }] } }, 'ignored'],
  ['batch holding a bad enqueue', { bgsync: 1, type: 'batch', args: { calls: [{ type: 'enqueue', args: { queue: 'default', method: 'TRACE', url: `${ORIGIN}/api/x` } }] } }, 'ignored'],
  ['batch holding null', { bgsync: 1, type: 'batch', args: { calls: [null] } }, 'ignored'],
];

describe('Bad raw messages (BgsyncWorker._onMessage)', () => {
  it.each(RAW_CASES)('%s → %s', async (name, data, expected) => {
    const before = await snapshot();
    const ignoredBefore = t.worker.diagnostics.ignoredMessages;
    const { port1, port2 } = new MessageChannel();
    const answer = new Promise((resolve) => {
      port1.onmessage = (e) => resolve(e.data);
    });
    t.deliver(data, { port: port2 });
    // An answer comes within a few event-loop turns; the engine is open already.
    const got = await Promise.race([answer, new Promise((r) => setTimeout(() => r(null), 300))]);
    port1.close();
    let outcome;
    if (got === null) outcome = t.worker.diagnostics.ignoredMessages > ignoredBefore ? 'ignored' : 'silent';
    else outcome = got.ok ? 'ok' : got.error.code;
    expect(outcome).toBe(expected);
    expect({}.polluted).toBeUndefined();
    if (expected === 'ok') {
      // The one accepted case: an item, and nothing polluted.
      const engine = await t.worker.engine();
      const last = engine.items({ limit: 1000 }).at(-1);
      expect(last.url).toBe(`${ORIGIN}/api/p`);
      await engine.settle();
    } else {
      expect(await snapshot()).toEqual(before);
    }
  });

  it('forged senders are ignored: another origin, a source of another origin, no reply port', async () => {
    const before = await snapshot();
    const valid = { bgsync: 1, type: 'enqueue', args: { queue: 'default', method: 'POST', url: `${ORIGIN}/api/forged`, headers: {} } };
    const n = t.worker.diagnostics.ignoredMessages;
    const { port2 } = new MessageChannel();
    t.deliver(valid, { port: port2, origin: 'https://evil.test' });
    t.deliver(valid, { port: port2, sourceUrl: 'https://evil.test/page' });
    t.deliver(valid, { port: port2, origin: '', sourceUrl: 'not a url' });
    t.deliver(valid, {});
    port2.close();
    expect(t.worker.diagnostics.ignoredMessages).toBe(n + 4);
    await (await t.worker.engine()).settle();
    expect(await snapshot()).toEqual(before);
  });
});
