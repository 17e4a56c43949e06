/**
 * build.mjs -- builds the WebAssembly module into sw/wasm/ (incrementally: CMake decides
 * what changed). `--native` also builds the native library and tests into build/native.
 * Used by `npm run build`, `npm start` and `npm test`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, emscriptenEnv, mustRun } from './system.mjs';

export function buildWasm() {
  const dir = join(ROOT, 'build/wasm');
  const env = emscriptenEnv();
  if (!existsSync(join(dir, 'CMakeCache.txt'))) {
    mustRun('emcmake', ['cmake', '-S', ROOT, '-B', dir, '-DCMAKE_BUILD_TYPE=Release', '-DBUILD_TESTING=OFF'], { env });
  }
  mustRun('cmake', ['--build', dir, '-j2'], { env });
}

export function buildNative(dir = 'build/native', flags = []) {
  const path = join(ROOT, dir);
  if (!existsSync(join(path, 'CMakeCache.txt'))) {
    mustRun('cmake', ['-S', ROOT, '-B', path, ...flags]);
  }
  mustRun('cmake', ['--build', path, '-j2']);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  buildWasm();
  if (process.argv.includes('--native')) buildNative('build/native', ['-DCMAKE_BUILD_TYPE=Release']);
}
