/**
 * loadEngineModule -- instantiates the WebAssembly engine. In a service worker (or a
 * page) it fetches and compiles bgsync-engine.wasm next to this file (sw/wasm/). Vite,
 * webpack 5 and Parcel see the `new URL(..., import.meta.url)` pattern and ship the file.
 * esbuild does not copy assets: copy node_modules/bgsync/sw/wasm/bgsync-engine.wasm next to
 * the bundled worker and pass `wasmUrl` (BgsyncWorker's option of the same name), as
 * tests/e2e/package.test.js does. In Node, pass the bytes (`wasmBinary`): Emscripten's
 * own loader trips over Node's fetch.
 */
import createBgsyncEngine from './wasm/bgsync-engine.mjs';

const DEFAULT_WASM_URL = new URL('./wasm/bgsync-engine.wasm', import.meta.url);

async function compileFrom(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`bgsync: cannot fetch ${url} (${response.status})`);
  // Streaming compilation needs the application/wasm type; fall back when a server omits it.
  if (typeof WebAssembly.compileStreaming === 'function' &&
      (response.headers.get('content-type') || '').startsWith('application/wasm')) {
    return WebAssembly.compileStreaming(response);
  }
  return WebAssembly.compile(await response.arrayBuffer());
}

/**
 * @param {{wasmUrl?: string|URL, wasmBinary?: Uint8Array, wasmModule?: WebAssembly.Module}} [options]
 * @returns {Promise<object>} the Emscripten module
 */
export async function loadEngineModule(options = {}) {
  if (options.wasmBinary) return createBgsyncEngine({ wasmBinary: options.wasmBinary });
  const compiled = options.wasmModule ?? (await compileFrom(options.wasmUrl ?? DEFAULT_WASM_URL));
  return createBgsyncEngine({
    instantiateWasm(imports, done) {
      WebAssembly.instantiate(compiled, imports).then((instance) => done(instance, compiled));
      return {}; // exports arrive through done()
    },
  });
}
