/**
 * loadEngineModule -- instantiates the WebAssembly engine. In a service worker (or a
 * page) it fetches and compiles bgsync-engine.wasm next to this file (sw/wasm/). Vite,
 * webpack 5 and Parcel see the `new URL(..., import.meta.url)` pattern and ship the file.
 * esbuild does not copy assets: copy node_modules/bgsync/sw/wasm/bgsync-engine.wasm next to
 * the bundled worker and pass `wasmUrl` (BgsyncWorker's option of the same name), as
 * tests/e2e/package.test.js does. In Node, pass the bytes (`wasmBinary`): Node's fetch
 * does not read file: URLs.
 */
import { instantiateEngine } from './engineInstance.js';

const DEFAULT_WASM_URL = new URL('./wasm/bgsync-engine.wasm', import.meta.url);

/**
 * The Cache API keeps the last .wasm fetched, because a worker the browser stopped while
 * the device is offline must still open its engine when it starts again (the queue is
 * most needed exactly then). Network first, so a deployed build is picked up as soon as
 * it can be fetched; the cache only when the network fails.
 */
export const WASM_CACHE_NAME = 'bgsync-engine-wasm';

async function fetchWasm(url) {
  const key = String(url);
  let failure;
  try {
    const response = await fetch(url);
    if (response.ok) {
      remember(key, response.clone());
      return response;
    }
    failure = new Error(`bgsync: cannot fetch ${url} (${response.status})`);
  } catch (err) {
    failure = err;
  }
  const cache = await globalThis.caches?.open(WASM_CACHE_NAME);
  const cached = await cache?.match(key);
  if (cached) return cached;
  throw failure;
}

function remember(key, response) {
  globalThis.caches
    ?.open(WASM_CACHE_NAME)
    .then((cache) => cache.put(key, response))
    .catch(() => {}); // a full cache must not stop the engine from loading
}

/** Stores the module in the Cache API (a worker's install step; see BgsyncWorker). */
export async function precacheEngineModule(wasmUrl = DEFAULT_WASM_URL) {
  if (!globalThis.caches) return;
  const cache = await caches.open(WASM_CACHE_NAME);
  await cache.add(String(wasmUrl));
}

async function compileFrom(url) {
  const response = await fetchWasm(url);
  // Streaming compilation needs the application/wasm type; fall back when a server omits it.
  if (typeof WebAssembly.compileStreaming === 'function' &&
      (response.headers.get('content-type') || '').startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/**
 * @param {{wasmUrl?: string|URL, wasmBinary?: Uint8Array, wasmModule?: WebAssembly.Module}} [options]
 * @returns {Promise<object>} the instantiated engine module (engineInstance.js)
 */
export async function loadEngineModule(options = {}) {
  if (options.wasmBinary) return instantiateEngine(options.wasmBinary);
  return instantiateEngine(options.wasmModule ?? (await compileFrom(options.wasmUrl ?? DEFAULT_WASM_URL)));
}
