#!/usr/bin/env node
/**
 * main -- `npm start` ends here: the demo app, bgsync's sw/ and web/ and the reference API
 * on one 127.0.0.1 server.
 *
 *   PORT=8787 node demo/server/main.js     (default 8787; a taken port falls back to a free one)
 *   BGS_WASM_DIR=build/x/out node demo/server/main.js   (serve a module built elsewhere)
 *   BGS_DEMO_DATA=/tmp/api.sqlite node demo/server/main.js  (another data file; tests use this
 *     so that they never touch the demo's own data)
 *
 * The API keeps its data in SQLite (demo/data/reference-api.sqlite, via better-sqlite3);
 * if the native module cannot load, it says so and keeps the data in memory instead.
 * The shared notes the demo edits are seeded when missing, at start and after a reset.
 */
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createServer } from './createServer.js';
import { MemoryDataStore } from './MemoryDataStore.js';
import { ReferenceApi } from './ReferenceApi.js';
import { SqliteDataStore } from './SqliteDataStore.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const DATA_FILE = join(ROOT, 'demo/data/reference-api.sqlite');
const DEFAULT_PORT = 8787;

/** The notes every volunteer shares; the demo edits them offline and conflicts on them. */
export const SEED_NOTES = [
  { id: 'shift-plan', title: 'Saturday shift plan', text: 'Meet at the depot at 8:00.\nBring gloves and water.', owner: 'Coordinator' },
  { id: 'supplies', title: 'Supplies to restock', text: 'Bin bags (2 rolls)\nFirst-aid kit refill', owner: 'Coordinator' },
];

function openStore(file) {
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3');
    return { store: new SqliteDataStore({ Database, file }), kind: 'sqlite' };
  } catch (err) {
    const reason = String(err?.message ?? err).split('\n')[0];
    console.warn(
      '\n  WARNING: better-sqlite3 could not be loaded, so the reference API keeps its data in\n' +
        '  memory (it is lost when the server stops). Reason: ' + reason + '\n' +
        '  Fix: npm install (with better-sqlite3 allowed to build: see package.json allowScripts).\n',
    );
    return { store: new MemoryDataStore(), kind: 'memory' };
  }
}

function seed(api) {
  for (const note of SEED_NOTES) {
    if (!api.store.get('notes', note.id)) api.store.put('notes', note.id, note, api.now());
  }
}

function wantedPort() {
  const raw = process.env.PORT;
  const port = raw === undefined || raw === '' ? DEFAULT_PORT : Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number (0-65535), not '${raw}'`);
  }
  return port;
}

/**
 * Starts the demo server (the e2e walkthrough uses this too).
 * @param {{port?: number, dataFile?: string, wasmDir?: string}} [options]  port 0 = any free
 *   port; wasmDir serves the engine module from another build output (BGS_WASM_OUT)
 *   instead of sw/wasm/.
 * @returns {Promise<{url: string, api: ReferenceApi, kind: 'sqlite'|'memory', dataFile: string,
 *                    fellBack: boolean, close: () => Promise<void>}>}
 */
export async function startDemo({ port = DEFAULT_PORT, dataFile = DATA_FILE, wasmDir } = {}) {
  const { store, kind } = openStore(dataFile);
  const api = new ReferenceApi({ store });
  const resetApi = api.reset.bind(api);
  api.reset = () => {
    resetApi();
    seed(api); // a reset demo still has its shared notes
  };
  seed(api);

  const options = {
    host: '127.0.0.1',
    api,
    mounts: {
      '/': join(ROOT, 'demo/app'),
      '/bgsync/sw/': join(ROOT, 'sw'),
      '/bgsync/web/': join(ROOT, 'web'),
      ...(wasmDir ? { '/bgsync/sw/wasm/': resolve(wasmDir) } : {}),
    },
  };
  let server;
  let fellBack = false;
  try {
    server = await createServer({ ...options, port });
  } catch (err) {
    if (err?.code !== 'EADDRINUSE' && err?.code !== 'EACCES') throw err;
    fellBack = true;
    server = await createServer({ ...options, port: 0 });
  }
  return {
    url: server.url,
    api,
    kind,
    dataFile,
    fellBack,
    close: async () => {
      await server.close();
      store.close?.();
    },
  };
}

async function main() {
  const port = wantedPort();
  const demo = await startDemo({
    port,
    dataFile: process.env.BGS_DEMO_DATA ? resolve(process.env.BGS_DEMO_DATA) : DATA_FILE,
    wasmDir: process.env.BGS_WASM_DIR || undefined,
  });
  if (demo.fellBack) console.warn(`\n  Port ${port} is taken; using a free port instead.`);

  const line = '─'.repeat(60);
  console.log(`\n  ${line}`);
  console.log(`  bgsync demo is running at  ${demo.url}/`);
  console.log(`  ${line}`);
  console.log('  Open it in Chromium or Chrome, record an activity, then use the');
  console.log('  "Server controls" panel to take the API down and watch bgsync retry.');
  console.log(`  API data: ${demo.kind === 'sqlite' ? demo.dataFile : 'in memory (see the warning above)'}`);
  console.log('  Guide:    demo/README.md         Stop: Ctrl+C\n');

  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n  ${signal}: stopping the demo server...`);
    await demo.close();
    process.exit(0);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(`bgsync demo: ${err?.stack ?? err}`);
    process.exit(1);
  });
}
