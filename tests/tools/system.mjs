/**
 * system.mjs -- what a fresh Debian machine lacks, installed by the project's own files:
 * Debian packages (apt-get, as root or through sudo) and the npm dependencies (npm ci).
 * Only Node's built-ins are used here: this runs before node_modules exists.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** Debian packages and why each is needed. */
export const APT_PACKAGES = {
  emscripten: 'compiles the engine and SQLite to WebAssembly (emcc 3.1.6)',
  cmake: 'the one build',
  make: 'the build tool CMake drives',
  gcc: 'the native build and its sanitizers',
  clang: 'libFuzzer targets',
  'libclang-rt-14-dev': "clang's sanitizer and libFuzzer runtimes",
  chromium: 'end-to-end tests in a real browser with a real service worker',
  python3: 'node-gyp builds better-sqlite3 for the demo server',
  'g++': 'node-gyp builds better-sqlite3 for the demo server',
};

export function run(cmd, args, options = {}) {
  const result = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

export function mustRun(cmd, args, options = {}) {
  const status = run(cmd, args, options);
  if (status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${status}`);
}

function installed(pkg) {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f=${Status}', pkg], { stdio: ['ignore', 'pipe', 'ignore'] });
    return out.toString().includes('install ok installed');
  } catch {
    return false;
  }
}

function asRoot(args) {
  if (process.getuid?.() === 0) return ['', args];
  return ['sudo', args];
}

/** Installs the Debian packages that are missing (apt-get update once first). */
export function ensureAptPackages(names = Object.keys(APT_PACKAGES)) {
  const missing = names.filter((p) => !installed(p));
  if (missing.length === 0) return;
  console.log(`bgsync: installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [sudo] = asRoot();
  const cmd = (args) => (sudo ? ['sudo', ['-E', 'apt-get', ...args]] : ['apt-get', args]);
  mustRun(...cmd(['update', '-q']), { env });
  mustRun(...cmd(['install', '-y', '-q', '--no-install-recommends', ...missing]), { env });
}

/** Runs `npm ci` when node_modules is missing or older than package-lock.json. */
export function ensureNodeModules() {
  const lock = join(ROOT, 'package-lock.json');
  const marker = join(ROOT, 'node_modules', '.package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  console.log('bgsync: installing npm dependencies (npm ci)');
  mustRun('npm', ['ci', '--no-audit', '--no-fund']);
}

/** Environment for emcc: Debian's emscripten needs Debian's acorn on NODE_PATH. */
export function emscriptenEnv() {
  const nodePath = ['/usr/share/nodejs', process.env.NODE_PATH].filter(Boolean).join(':');
  return { ...process.env, NODE_PATH: nodePath };
}
