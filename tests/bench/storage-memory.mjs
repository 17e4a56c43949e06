#!/usr/bin/env node
/**
 * storage-memory -- wasm memory and enqueue throughput per page store available in Node.
 *
 *   node tests/bench/storage-memory.mjs [--items 100000] [--json]
 *   BGS_WASM_DIR=build/e-wasm/out node tests/bench/storage-memory.mjs
 *
 * For each backend (memory, file): wasm memory (HEAPU8.length) with 1k and 100k queued
 * items of 200-byte bodies (goals: <= 16 MiB and <= 64 MiB), the database size, and
 * enqueue throughput one by one (each awaited: one flush per call) and in bursts of 1000
 * (one group commit per burst). Clock: performance.now(); the engine gets a fixed time.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { instantiateEngine } from '../../sw/engineInstance.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { FileStore } from '../../sw/storage/FileStore.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const WASM_DIR = process.env.BGS_WASM_DIR ?? join(ROOT, 'sw/wasm');
const args = process.argv.slice(2);
const BIG = Number(args[args.indexOf('--items') + 1] || 0) || 100_000;
const JSON_OUT = args.includes('--json');

async function loadModule() {
  return instantiateEngine(readFileSync(join(WASM_DIR, 'bgsync-engine.wasm')));
}

const MiB = 1024 * 1024;
const body = new Uint8Array(200).fill(0x61);
const meta = (i) => ({ queue: 'outbox', method: 'POST', url: `https://api.example/notes/${i}` });

async function fill(engine, from, to) {
  for (let i = from; i < to; i += 1000) {
    const n = Math.min(1000, to - i);
    await Promise.all(Array.from({ length: n }, (_, k) => engine.enqueue(meta(i + k), body)));
  }
}

async function measure(name, makeStore) {
  const module = await loadModule(); // a fresh module per backend: memory starts from zero
  const { store, cleanup } = makeStore();
  const engine = await Engine.open(module, store, {
    now: () => 1_700_000_000_000,
    seed: 1,
    installId: 'bench',
    queues: [{ name: 'outbox' }],
  });
  const out = { backend: name };

  await fill(engine, 0, 1000);
  out.memAt1kMiB = module.HEAPU8.length / MiB;
  out.dbAt1kMiB = engine._storedSize / MiB; // the database file (the image) size

  // One by one, each awaited: the latency of a durable enqueue.
  const nSingle = 500;
  let t = performance.now();
  for (let i = 0; i < nSingle; i++) await engine.enqueue(meta(1000 + i), body);
  out.singlePerSec = Math.round(nSingle / ((performance.now() - t) / 1000));

  // Bursts of 1000 issued together: group commit.
  const nBursts = 5;
  t = performance.now();
  await fill(engine, 1500, 1500 + nBursts * 1000);
  out.burstPerSec = Math.round((nBursts * 1000) / ((performance.now() - t) / 1000));

  await fill(engine, 1500 + nBursts * 1000, BIG);
  out.items = engine.status().counts.pending;
  out.memAtBigMiB = module.HEAPU8.length / MiB;
  out.dbAtBigMiB = engine._storedSize / MiB;
  out.flushes = engine.stats.flushes;

  // Reopen: loading the stored pages back.
  await engine.close();
  const module2 = await loadModule();
  t = performance.now();
  const again = await Engine.open(module2, makeStore.reopen ? makeStore.reopen() : store, {
    now: () => 1_700_000_000_000,
    seed: 1,
    installId: 'bench',
  });
  out.reopenMs = Math.round(performance.now() - t);
  out.memAfterReopenMiB = module2.HEAPU8.length / MiB;
  out.itemsAfterReopen = again.status().counts.pending;
  await again.close();
  cleanup?.();
  return out;
}

const results = [];
results.push(await measure('memory', () => ({ store: new MemoryStore() })));
{
  const dir = mkdtempSync(join(tmpdir(), 'bgs-bench-'));
  const make = () => ({ store: new FileStore({ dir: join(dir, 's') }), cleanup: () => rmSync(dir, { recursive: true, force: true }) });
  make.reopen = () => new FileStore({ dir: join(dir, 's') });
  results.push(await measure('file', make));
}

if (JSON_OUT) {
  console.log(JSON.stringify(results, null, 2));
} else {
  const f = (x) => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toFixed(1)) : String(x));
  console.log(`wasm: ${WASM_DIR}; bodies 200 B; goals: <= 16 MiB at 1k items, <= 64 MiB at ${BIG} items`);
  const cols = ['backend', 'memAt1kMiB', 'dbAt1kMiB', 'items', 'memAtBigMiB', 'dbAtBigMiB', 'singlePerSec', 'burstPerSec', 'reopenMs', 'memAfterReopenMiB', 'itemsAfterReopen'];
  console.log(cols.join('\t'));
  for (const r of results) console.log(cols.map((c) => f(r[c])).join('\t'));
}
