// engine-wasm.mjs -- the engine benchmark of tests/bench/engine_bench.c, through the
// WebAssembly module in Node (EngineBinding, synchronous: no store, so this measures the
// engine and the binding, not IndexedDB). Prints cycles/s at 1k and 100k queued items,
// claim latency at 1k/10k/100k, and the wasm/native ratio when given the native figures.
//
//   node tests/bench/engine-wasm.mjs [cycles] [--native build/a-release/tests/c/bgs_engine_bench]
//   BGS_WASM_DIR=build/a-wasm/out node tests/bench/engine-wasm.mjs
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { loadWasm } from '../js/support/loadWasm.js';
import { EngineBinding } from '../../sw/EngineBinding.js';

const args = process.argv.slice(2);
const nativeAt = args.indexOf('--native');
const nativeExe = nativeAt >= 0 ? args[nativeAt + 1] : null;
const cycles = Number(args.find((a, i) => /^\d+$/.test(a) && i !== nativeAt + 1) ?? 20000);

const ITEM = { queue: 'q', method: 'POST', url: 'https://api.test/notes', headers: { 'content-type': 'application/json' } };
const BODY = new TextEncoder().encode('{"title":"hello","body":"a small note of about eighty bytes"}');

// CPU time of this process in ms: on a shared machine the wall clock also counts the time
// other processes had the CPU. Both are printed, as the native benchmark does.
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const module = await loadWasm();
const b = new EngineBinding(module);

function openEngine() {
  const eng = b.open(null, { installId: 'bench', seed: 1, now: 1 });
  b.configureQueue(eng, { name: 'q' }, 1);
  return eng;
}

function fill(eng, n, now) {
  for (let i = 0; i < n; i++) {
    b.enqueue(eng, ITEM, BODY, now);
    if (i % 1000 === 999) b.takeChanges(eng);
  }
  b.takeChanges(eng);
}

const TRIALS = 5; // as the native benchmark: the median of five runs on one engine
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function cyclesPerSecond(nQueued, n) {
  const eng = openEngine();
  let now = 1000;
  fill(eng, nQueued, now);
  const cpu = [];
  const wall = [];
  for (let t = 0; t < TRIALS; t++) {
    const t0 = cpuMs();
    const w0 = performance.now();
    for (let i = 0; i < n; i++) {
      now++;
      b.enqueue(eng, ITEM, BODY, now);
      b.takeChanges(eng);
      const [item] = b.claim(eng, 'q', 1, now);
      b.takeChanges(eng);
      b.outcome(eng, { id: item.id, attempt: item.attempt, status: 200 }, null, now);
      b.takeChanges(eng);
    }
    cpu.push(n / ((cpuMs() - t0) / 1000));
    wall.push(n / ((performance.now() - w0) / 1000));
  }
  b.close(eng);
  return { cpu: median(cpu), wall: median(wall) };
}

function claimLatencyUs(nQueued, n) {
  const eng = openEngine();
  let now = 1000;
  let total = 0;
  fill(eng, nQueued, now);
  for (let i = 0; i < n; i++) {
    now++;
    const t0 = cpuMs();
    const [item] = b.claim(eng, 'q', 1, now);
    total += cpuMs() - t0;
    b.outcome(eng, { id: item.id, attempt: item.attempt, status: 200 }, null, now);
    b.enqueue(eng, ITEM, BODY, now);
    b.takeChanges(eng);
  }
  b.close(eng);
  return (total / n) * 1000;
}

const r1k = cyclesPerSecond(1000, cycles);
const r100k = cyclesPerSecond(100000, cycles);
console.log(`wasm cycles/s (enqueue+claim+complete, changes taken after each call), median of ${TRIALS} runs of ${cycles} cycles per CPU second (median per wall second):`);
console.log(`  queued 1k:   ${r1k.cpu.toFixed(0)} (${r1k.wall.toFixed(0)})`);
console.log(`  queued 100k: ${r100k.cpu.toFixed(0)} (${r100k.wall.toFixed(0)})`);
console.log('wasm claim latency (one item, CPU time):');
for (const size of [1000, 10000, 100000]) {
  console.log(`  queued ${String(size).padStart(6)}: ${claimLatencyUs(size, Math.floor(cycles / 4)).toFixed(1)} us`);
}
if (nativeExe) {
  const out = execFileSync(nativeExe, [String(cycles)], { encoding: 'utf8' });
  const native = JSON.parse(out.split('\n').find((l) => l.startsWith('JSON ')).slice(5));
  console.log('wasm/native ratio (median cycles per CPU second):');
  console.log(`  queued 1k:   ${(r1k.cpu / native.cycles1k).toFixed(2)} (native ${native.cycles1k})`);
  console.log(`  queued 100k: ${(r100k.cpu / native.cycles100k).toFixed(2)} (native ${native.cycles100k})`);
}
