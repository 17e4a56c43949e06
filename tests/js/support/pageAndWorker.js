/**
 * A page and a worker in one Node process: the real SyncClient talks to a real
 * BgsyncWorker (the wasm engine over a MemoryStore) through a fake ServiceWorkerContainer
 * whose postMessage structured-clones like a browser does (and throws DataCloneError where
 * a browser would). `posted` lists every message the page posted.
 */
import { BgsyncWorker } from '../../../sw/BgsyncWorker.js';
import { SyncClient } from '../../../web/SyncClient.js';

export const ORIGIN = 'https://app.test';

/**
 * A structured clone made in this realm (Node's structuredClone returns objects of the
 * outer realm, whose prototypes the worker's isPlainObject would rightly refuse).
 */
function cloneHere(v) {
  if (v === null || typeof v !== 'object') return v;
  if (v instanceof ArrayBuffer || Object.prototype.toString.call(v) === '[object ArrayBuffer]') return v.slice(0);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  if (v instanceof Date) return new Date(v.getTime());
  if (Array.isArray(v)) return v.map(cloneHere);
  const out = {};
  for (const k of Object.keys(v)) Object.defineProperty(out, k, { value: cloneHere(v[k]), enumerable: true, writable: true, configurable: true });
  return out;
}

/** A worker scope and a container that deliver messages like a browser. */
export function pageAndWorker(wasmModule, { timeoutMs }) {
  const scope = {
    location: new URL(`${ORIGIN}/sw.js`),
    addEventListener() {},
    fetch: async () => {
      throw new TypeError('offline');
    },
  };
  const logs = [];
  const worker = new BgsyncWorker({
    queues: [{ name: 'default' }],
    storage: 'memory',
    wasmModule,
    blobStore: false,
    logger: { warn: (m) => logs.push(m), info: () => {} },
  });
  worker.listen(scope);
  const replies = [];
  const posted = [];
  const deliver = (data, { port, origin = ORIGIN, sourceUrl = `${ORIGIN}/page` } = {}) => {
    worker._onMessage({ data, origin, source: { url: sourceUrl }, ports: port ? [port] : [], waitUntil() {} });
  };
  const active = {
    postMessage(msg, transfer = []) {
      // A browser clones the message before it leaves the page.
      let data;
      try {
        structuredClone(msg); // throws where a browser's postMessage throws
        data = cloneHere(msg);
        posted.push(data);
      } catch (err) {
        throw new DOMException(err.message, 'DataCloneError');
      }
      const port = transfer.find((x) => typeof x?.postMessage === 'function');
      if (port) {
        const onAnswer = port.postMessage.bind(port);
        port.postMessage = (m) => {
          replies.push(m);
          onAnswer(m);
        };
      }
      deliver(data, { port });
    },
  };
  const container = {
    ready: Promise.resolve({ active }),
    addEventListener() {},
    removeEventListener() {},
  };
  const client = new SyncClient({ serviceWorker: container, baseUrl: `${ORIGIN}/page`, timeoutMs });
  return { worker, client, deliver, logs, replies, posted };
}

