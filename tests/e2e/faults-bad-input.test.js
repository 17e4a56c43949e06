/**
 * Bad input from pages in real Chromium: a table of malformed SyncClient calls and raw
 * messages posted at the worker, run in the page. Each has a defined outcome -- a typed
 * BgsyncError code: 'invalid-argument' from the page itself for a call that fails
 * web/protocol.js validation (the worker would ignore it, unanswered) -- and leaves the
 * queue as it was (items compared before and after, no request reaches
 * the API). The same table runs in Node in tests/js/faults-bad-input.test.js; here the
 * browser's own structured clone, URL parser and MessagePort are in the loop.
 */
import { join } from 'node:path';
import { E2eHarness, ROOT } from './support/E2eHarness.js';

let h;
let s;
beforeAll(async () => {
  h = await E2eHarness.start({ fixtureDir: join(ROOT, 'tests/e2e/fixtures-faults') });
  s = await h.open('/?timeoutMs=1500');
  h.api.faults.set({ status: 503 });
  await s.call((c) => c.enqueue({ url: '/api/notes', body: { first: true } }));
});
afterAll(async () => {
  await s?.close();
  await h?.stop();
});

// [name, source of (c) => promise, expected code]
const CASES = [
  ['no url', (c) => c.enqueue({}), 'invalid-url'],
  ['url a number', (c) => c.enqueue({ url: 42 }), 'invalid-url'],
  ['url that does not parse', (c) => c.enqueue({ url: 'http://[' }), 'invalid-url'],
  ['ftp url', (c) => c.enqueue({ url: 'ftp://127.0.0.1/x' }), 'invalid-url'],
  ['javascript: url', (c) => c.enqueue({ url: 'javascript:alert(1)' }), 'invalid-url'],
  ['blob: url', (c) => c.enqueue({ url: URL.createObjectURL(new Blob(['x'])) }), 'invalid-url'],
  ['off-origin url', (c) => c.enqueue({ url: 'https://evil.test/steal' }), 'origin-not-allowed'],
  ['localhost for 127.0.0.1 (another origin)', (c) => c.enqueue({ url: location.href.replace('127.0.0.1', 'localhost') }), 'origin-not-allowed'],
  ['unknown queue', (c) => c.enqueue({ url: '/api/x', queue: 'nope' }), 'unknown-queue'],
  ['a function body', (c) => c.enqueue({ url: '/api/x', body: () => 1 }), 'unclonable-body'],
  ['a symbol body', (c) => c.enqueue({ url: '/api/x', body: Symbol('s') }), 'unclonable-body'],
  ['a 17 MiB body (over maxBodyBytes, blob store or not)', (c) => c.enqueue({ url: '/api/x', body: 'x'.repeat(17 * 1024 * 1024) }), 'body-too-large'],
  ['baseDocument that is not JSON', (c) => c.enqueue({ url: '/api/x', baseDocument: '{nope' }), 'invalid-argument'],
  ['retryDead of an unknown id', (c) => c.retryDead(987654), 'not-found'],
  ['discardDead of an unknown id', (c) => c.discardDead(987654), 'not-found'],
  ['resolveConflict of an unknown id', (c) => c.resolveConflict(987654, { keep: 'local' }), 'not-found'],
  ['status of an unknown queue', (c) => c.status('nope'), 'unknown-queue'],
  ['unknown method', (c) => c.enqueue({ url: '/api/x', method: 'FOO' }), 'invalid-argument'],
  ['unknown priority', (c) => c.enqueue({ url: '/api/x', priority: 'urgent' }), 'invalid-argument'],
  ['header value with CRLF', (c) => c.enqueue({ url: '/api/x', headers: { 'x-a': 'a\r\nInjected: 1' } }), 'invalid-argument'],
  ['header name with a space', (c) => c.enqueue({ url: '/api/x', headers: { 'bad name': '1' } }), 'invalid-argument'],
  ['entity of 300 characters', (c) => c.enqueue({ url: '/api/x', entity: 'e'.repeat(300) }), 'invalid-argument'],
  ['url of 9000 characters', (c) => c.enqueue({ url: `/api/${'u'.repeat(9000)}` }), 'invalid-argument'],
  ['editedAt Infinity', (c) => c.enqueue({ url: '/api/x', editedAt: Infinity }), 'invalid-argument'],
  ['retryDead of id 1.5', (c) => c.retryDead(1.5), 'invalid-argument'],
  ['items limit 10001', (c) => c.items({ limit: 10_001 }), 'invalid-argument'],
  // Raw messages: another protocol version is answered, the rest is dropped.
  ['raw: protocol version 99', (c) => new Promise((resolve, reject) => {
    const ch = new MessageChannel();
    ch.port1.onmessage = (e) => (e.data.ok ? resolve(e.data) : reject(window.bgsTest.BgsyncError.fromJSON(e.data.error)));
    c.worker.postMessage({ bgsync: 99, type: 'hello' }, [ch.port2]);
  }), 'protocol-mismatch'],
  ['raw: a MessagePort inside args (unclonable without transfer)', (c) => {
    const { port1 } = new MessageChannel();
    return c._request('status', { queue: 'default', port: port1 });
  }, 'unclonable-body'],
];

describe('Bad input from pages (Chromium)', () => {
  it.each(CASES)('%s → %s, nothing changes', async (name, fn, expected) => {
    const before = await s.call((c) => c.items());
    const requests = h.api.log.length;
    const r = await s.attempt(fn);
    const code = r.error ? (r.error.name === 'BgsyncError' ? r.error.code : `untyped ${r.error.name}: ${r.error.message}`) : 'resolved';
    expect(code).toBe(expected);
    const after = await s.call((c) => c.items());
    expect(after.map((i) => [i.id, i.key, i.url])).toEqual(before.map((i) => [i.id, i.key, i.url]));
    expect(h.api.log.length - requests).toBeLessThanOrEqual(1); // at most a retry of the first item
  });

  // Found here: bodies that are objects but not plain data (FormData, URLSearchParams,
  // ReadableStream, Map) were JSON-stringified by web/SyncClient.js encodeBody to "{}": the
  // enqueue resolved and the server received an empty object. Now fetch's own bodies are
  // encoded as fetch encodes them, and other non-plain objects are refused.
  it('a Map body is refused (unclonable-body), never sent as "{}"', async () => {
    const before = await s.call((c) => c.items());
    const r = await s.attempt((c) => c.enqueue({ url: '/api/forms', body: new Map([['a', 1]]) }));
    expect(r.error).toMatchObject({ name: 'BgsyncError', code: 'unclonable-body' });
    expect((await s.call((c) => c.items())).length).toBe(before.length);
  });

  it('a URLSearchParams body is sent as form data, never as "{}"', async () => {
    const r = await s.attempt((c) => c.enqueue({ url: '/api/forms', body: new URLSearchParams({ a: '1' }) }));
    if (r.error) {
      expect(r.error.code).toBe('unclonable-body');
      return;
    }
    h.api.faults.set({ status: 0 });
    await s.call((c) => c.syncNow());
    const docs = await s.page.evaluate(async () => (await fetch('/api/forms')).json());
    console.log(`URLSearchParams body arrived as: ${JSON.stringify(docs)}`);
    expect(docs.some((d) => d.a === '1')).toBe(true);
  });
});
