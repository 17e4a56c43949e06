/**
 * Loads the engine module in Node from BGS_WASM_DIR (default sw/wasm): the factory and
 * the wasm of one build, handed its bytes (Emscripten's Node loader trips on fetch).
 */
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const WASM_DIR = process.env.BGS_WASM_DIR ?? join(ROOT, 'sw/wasm');

export async function loadWasm() {
  const { default: factory } = await import(pathToFileURL(join(WASM_DIR, 'bgsync-engine.mjs')).href);
  return factory({ wasmBinary: readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')) });
}
