/**
 * build.mjs -- builds the WebAssembly module into sw/wasm/ (incrementally: CMake decides
 * what changed). `--native` also builds the native library and tests into build/native.
 * Used by `npm run build`, `npm start` and `npm test`.
 */
import { copyFileSync, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, emscriptenEnv, mustRun } from './system.mjs';

/**
 * The module is linked into build/wasm/out and copied into sw/wasm/ only when the link
 * produced it: a failed or half-finished build must never leave a partial .wasm there.
 * An Emscripten loader (bgsync-engine.mjs) from an older build is removed: the module is
 * standalone now (sw/engineInstance.js loads it).
 */
export function buildWasm() {
  const dir = join(ROOT, 'build/wasm');
  const out = join(dir, 'out');
  const env = emscriptenEnv();
  // Configured every time (a second or two): an older build dir may point its output elsewhere.
  mustRun('emcmake', ['cmake', '-S', ROOT, '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF', `-DBGS_WASM_OUT=${out}`], { env, stdio: 'ignore' });
  mustRun('cmake', ['--build', dir, '-j2'], { env });
  const files = ['bgsync-engine.wasm'];
  const target = join(ROOT, 'sw/wasm');
  mkdirSync(target, { recursive: true });
  for (const f of files) {
    if (!existsSync(join(out, f))) throw new Error(`wasm build produced no ${f}`);
  }
  rmSync(join(target, 'bgsync-engine.mjs'), { force: true });
  for (const f of files) {
    // Write beside, then rename: a reader never sees a partly written file.
    copyFileSync(join(out, f), join(target, `.${f}.tmp`));
    renameSync(join(target, `.${f}.tmp`), join(target, f));
  }
}

export function buildNative(dir = 'build/native', flags = [], target = null) {
  const path = join(ROOT, dir);
  if (!existsSync(join(path, 'CMakeCache.txt'))) {
    mustRun('cmake', ['-S', ROOT, '-B', path, ...flags]);
  }
  mustRun('cmake', ['--build', path, '-j2', ...(target ? ['--target', target] : [])]);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildWasm();
  if (process.argv.includes('--native')) buildNative('build/native', ['-DCMAKE_BUILD_TYPE=Release']);
}
