/**
 * engineInstance -- turns bgsync-engine.wasm into the object EngineBinding calls.
 *
 * The module is linked as standalone WebAssembly (CMakeLists.txt): its only import is
 * the notice that its memory grew, its exports keep their C names, and `_initialize`
 * runs its constructors. So this file replaces Emscripten's generated loader (about
 * 3.8 KB gzip of JavaScript that a service worker would carry, most of it for
 * environments a worker is not) with the four things the glue uses: the C functions
 * (as `_name`, Emscripten's spelling, which the glue and its tests already use), byte
 * and word views of memory that follow its growth, and reading a C string.
 */

const decoder = new TextDecoder();

/**
 * @param {WebAssembly.Module | BufferSource} source  a compiled module, or the .wasm bytes
 * @returns {Promise<object>} the engine's functions as `_name`, `HEAPU8`, `HEAPU32`,
 *   `HEAP32`, `UTF8ToString(ptr)`
 */
export async function instantiateEngine(source) {
  const imports = {
    // Views are rebuilt lazily when the buffer changes (see `views`), not here: growth
    // happens inside a C call, and nothing reads memory from JS until it returns.
    env: { emscripten_notify_memory_growth() {} },
  };
  const result = await WebAssembly.instantiate(source, imports);
  const exports = (result.instance ?? result).exports;
  const memory = exports.memory;
  let buffer = null;
  let u8, u32, i32;
  const views = () => {
    if (memory.buffer !== buffer) {
      buffer = memory.buffer;
      u8 = new Uint8Array(buffer);
      u32 = new Uint32Array(buffer);
      i32 = new Int32Array(buffer);
    }
  };
  const engine = {
    get HEAPU8() { views(); return u8; },
    get HEAPU32() { views(); return u32; },
    get HEAP32() { views(); return i32; },
    /** The NUL-terminated UTF-8 string at `ptr` ('' for a null pointer). */
    UTF8ToString(ptr) {
      if (!ptr) return '';
      views();
      const end = u8.indexOf(0, ptr);
      return decoder.decode(u8.subarray(ptr, end < 0 ? u8.length : end));
    },
  };
  for (const [name, value] of Object.entries(exports)) {
    if (typeof value === 'function') engine[`_${name}`] = value;
  }
  exports._initialize();
  return engine;
}
