/**
 * front-door.mjs -- the two commands of the README.
 *
 *   npm start   installs what is missing, builds the module, serves the demo on 127.0.0.1
 *   npm test    installs what is missing, builds, runs every test stage and closes with
 *               one line "bgsync: N passed, M failed" (non-zero exit if any failed)
 *   npm run bench   the benchmark against workbox-background-sync (tests/bench/run.mjs)
 *
 * Stages of `npm test` (each counts its tests; a stage that cannot run is a failure,
 * never a silent skip): native CTest, the same under AddressSanitizer+UBSan, libFuzzer
 * smoke runs, Jest in Node (the real wasm module), tsc over the .d.ts files (tests/types),
 * Jest end-to-end in Chromium, and a smoke run of the benchmark. BGS_STAGES=native,js
 * limits the stages (for development).
 */
import { readFileSync, existsSync, mkdirSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { ROOT, ensureAptPackages, ensureNodeModules, emscriptenEnv, mustRun } from './system.mjs';
import { buildWasm, buildNative } from './build.mjs';

const FUZZ_SECONDS = Number(process.env.BGS_FUZZ_SECONDS ?? 5);

function runCaptured(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, ...options });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  return { status: r.status ?? 1, out: `${r.stdout ?? ''}\n${r.stderr ?? ''}` };
}

/** CTest in a build dir: counts from its closing line. */
function ctestStage(name, dir, flags, env) {
  buildNative(dir, flags);
  const { status, out } = runCaptured('ctest', ['--test-dir', join(ROOT, dir), '--output-on-failure', '-j2'], { env });
  const m = out.match(/(\d+)% tests passed, (\d+) tests? failed out of (\d+)/);
  if (!m) return { name, passed: 0, failed: 1, note: 'ctest printed no summary' };
  const failed = Number(m[2]);
  const total = Number(m[3]);
  return { name, passed: total - failed, failed: failed + (status !== 0 && failed === 0 ? 1 : 0) };
}

/** Each fuzz_* target runs for FUZZ_SECONDS over its corpus (new inputs go to a temp dir). */
function fuzzStage() {
  const dir = 'build/fuzz';
  const env = { ...process.env, CC: 'clang' };
  if (!existsSync(join(ROOT, dir, 'CMakeCache.txt'))) {
    mustRun('cmake', ['-S', ROOT, '-B', join(ROOT, dir), '-DBGS_FUZZ=ON', '-DCMAKE_BUILD_TYPE=Debug', '-DBUILD_TESTING=OFF'], { env });
  }
  mustRun('cmake', ['--build', join(ROOT, dir), '-j2'], { env });
  const targets = findFiles(join(ROOT, dir), /^fuzz_[a-z0-9_]+$/);
  if (targets.length === 0) return { name: 'fuzz', passed: 0, failed: 1, note: 'no fuzz targets were built' };
  let passed = 0;
  let failed = 0;
  for (const exe of targets) {
    const base = exe.split('/').pop().replace(/^fuzz_/, '');
    const corpus = join(ROOT, 'tests/fuzz/corpus', base);
    const scratch = mkdtempSync(join(tmpdir(), `bgs-${base}-`));
    const args = [`-max_total_time=${FUZZ_SECONDS}`, '-print_final_stats=1', scratch];
    if (existsSync(corpus)) args.push(corpus);
    const { status, out } = runCaptured(exe, args);
    rmSync(scratch, { recursive: true, force: true });
    const runs = out.match(/stat::number_of_executed_units:\s*(\d+)/);
    console.log(`fuzz ${base}: ${status === 0 ? 'ok' : 'FAILED'}${runs ? `, ${runs[1]} executions` : ''}`);
    if (status === 0) passed++;
    else failed++;
  }
  return { name: 'fuzz', passed, failed };
}

function findFiles(dir, pattern) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'CMakeFiles') out.push(...findFiles(path, pattern));
    else if (entry.isFile() && pattern.test(entry.name)) out.push(path);
  }
  return out;
}

/** Jest with a config; counts from its JSON report. */
function jestStage(name, config) {
  const report = join(ROOT, 'tests/artifacts', `jest-${name}.json`);
  mkdirSync(join(ROOT, 'tests/artifacts'), { recursive: true });
  const { status } = runCaptured(
    process.execPath,
    ['--experimental-vm-modules', join(ROOT, 'node_modules/jest/bin/jest.js'), '-c', config, '--json', `--outputFile=${report}`],
    { env: { ...process.env, NODE_NO_WARNINGS: '1' } },
  );
  if (!existsSync(report)) return { name, passed: 0, failed: 1, note: 'jest wrote no report' };
  const r = JSON.parse(readFileSync(report, 'utf8'));
  const failedSuites = r.numFailedTestSuites ?? 0;
  if (r.numTotalTests === 0) return { name, passed: 0, failed: 1, note: 'jest ran no test' };
  return {
    name,
    passed: r.numPassedTests,
    failed: r.numFailedTests + (r.numFailedTests === 0 && (failedSuites > 0 || status !== 0) ? 1 : 0),
    skipped: r.numPendingTests,
  };
}

function benchSmokeStage() {
  const script = join(ROOT, 'tests/bench/run.mjs');
  if (!existsSync(script)) return { name: 'bench-smoke', passed: 0, failed: 0, note: 'no benchmark yet' };
  const { status } = runCaptured(process.execPath, [script, '--smoke']);
  return { name: 'bench-smoke', passed: status === 0 ? 1 : 0, failed: status === 0 ? 0 : 1 };
}

/**
 * tsc over tests/types: web/index.d.ts and sw/index.d.ts against code that uses them as an
 * app does. One check, two programs: the DOM and WebWorker libraries clash in one.
 */
function typesStage() {
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  if (!existsSync(tsc)) return { name: 'types', passed: 0, failed: 1, note: 'typescript is not installed' };
  const failing = ['tests/types/tsconfig.json', 'tests/types/tsconfig.sw.json'].filter(
    (project) => runCaptured(process.execPath, [tsc, '-p', join(ROOT, project), '--pretty', 'false']).status !== 0,
  );
  if (failing.length === 0) return { name: 'types', passed: 1, failed: 0 };
  return { name: 'types', passed: 0, failed: 1, note: `tsc found errors: ${failing.join(', ')}` };
}

const STAGES = {
  native: () => ctestStage('native', 'build/native', ['-DCMAKE_BUILD_TYPE=Release']),
  sanitize: () =>
    ctestStage('sanitize', 'build/asan', ['-DBGS_SANITIZE=ON', '-DCMAKE_BUILD_TYPE=Debug'], {
      ...process.env,
      ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    }),
  fuzz: fuzzStage,
  js: () => jestStage('js', 'tests/js/jest.config.js'),
  types: typesStage,
  e2e: () => jestStage('e2e', 'tests/e2e/jest.config.js'),
  bench: benchSmokeStage,
};

function prepare() {
  ensureAptPackages();
  ensureNodeModules();
  buildWasm();
}

function test() {
  prepare();
  const wanted = (process.env.BGS_STAGES ?? Object.keys(STAGES).join(',')).split(',');
  const results = [];
  for (const name of wanted) {
    const stage = STAGES[name];
    if (!stage) throw new Error(`unknown stage ${name}`);
    const started = Date.now();
    console.log(`\n=== bgsync test stage: ${name}`);
    let result;
    try {
      result = stage();
    } catch (err) {
      console.error(err);
      result = { name, passed: 0, failed: 1, note: String(err.message ?? err) };
    }
    result.seconds = Math.round((Date.now() - started) / 1000);
    results.push(result);
  }
  console.log('\n=== bgsync test summary');
  for (const r of results) {
    console.log(`${r.name.padEnd(12)} ${String(r.passed).padStart(4)} passed ${String(r.failed).padStart(3)} failed` +
      `${r.skipped ? ` ${r.skipped} skipped` : ''}  ${r.seconds}s${r.note ? `  (${r.note})` : ''}`);
  }
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  console.log(`bgsync: ${passed} passed, ${failed} failed`);
  process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
}

function start() {
  prepare();
  const main = join(ROOT, 'demo/server/main.js');
  mustRun(process.execPath, [main], { env: emscriptenEnv() });
}

function bench() {
  prepare();
  // The native engine figures come from their own build: Release with link-time
  // optimization (CMakeLists.txt, BGS_LTO), the benchmark target only.
  buildNative('build/bench', ['-DCMAKE_BUILD_TYPE=Release', '-DBGS_LTO=ON'], 'bgs_engine_bench');
  mustRun(process.execPath, [join(ROOT, 'tests/bench/run.mjs'), ...process.argv.slice(3)]);
}

const command = process.argv[2];
if (command === 'test') test();
else if (command === 'start') start();
else if (command === 'bench') bench();
else {
  console.error('usage: front-door.mjs start|test|bench');
  process.exitCode = 2;
}
