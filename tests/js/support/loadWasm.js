/**
 * Loads the engine module in Node from BGS_WASM_DIR (default sw/wasm), handed its bytes
 * (Node's fetch does not read file: URLs).
 */
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { instantiateEngine } from '../../../sw/engineInstance.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
export const WASM_DIR = process.env.BGS_WASM_DIR ?? join(ROOT, 'sw/wasm');

export async function loadWasm() {
  return instantiateEngine(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
}
