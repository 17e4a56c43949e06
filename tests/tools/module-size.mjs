/**
 * module-size.mjs -- prints what the engine module weighs, raw and gzip (level 9), for
 * each file a service worker loads: the wasm and the JS glue (which instantiates it).
 * Usage: node tests/tools/module-size.mjs [wasm dir]   (default sw/wasm)
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { ROOT } from './system.mjs';

const wasmDir = process.argv[2] ?? join(ROOT, 'sw/wasm');
const files = [
  join(wasmDir, 'bgsync-engine.wasm'),
  ...readdirSync(join(ROOT, 'sw'), { recursive: true })
    .filter((f) => f.endsWith('.js') && !f.startsWith('wasm'))
    .map((f) => join(ROOT, 'sw', f)),
];

const rows = files.map((f) => {
  const bytes = readFileSync(f);
  return { file: f.slice(ROOT.length + 1), raw: statSync(f).size, gzip: gzipSync(bytes, { level: 9 }).length };
});
const kb = (n) => `${(n / 1024).toFixed(1)} KiB`;
for (const r of rows) console.log(`${r.file.padEnd(40)} ${kb(r.raw).padStart(12)} raw ${kb(r.gzip).padStart(11)} gzip`);
const total = rows.reduce((a, r) => ({ raw: a.raw + r.raw, gzip: a.gzip + r.gzip }), { raw: 0, gzip: 0 });
console.log(`${'total (separate files)'.padEnd(40)} ${kb(total.raw).padStart(12)} raw ${kb(total.gzip).padStart(11)} gzip`);
console.log(JSON.stringify({ files: rows, total }));
