/**
 * Crash loop in real Chromium: the service worker is killed (CDP ServiceWorker.stopWorker)
 * again and again -- during bursts of enqueues and during replays to a slow server -- and
 * the whole browser is closed and relaunched on the same profile directory several times.
 *
 * Judged by the reference server's log of idempotency keys only:
 *  - 0 acknowledged items lost: every enqueue that resolved in the page was applied;
 *  - per-entity order: the applied requests of one entity arrive in enqueue order;
 *  - any repeat is the same idempotency key: no key is applied twice (the server dedupes
 *    a repeat and answers it from its idempotency store), and every key the server saw
 *    belongs to an item the worker stored.
 * The leases are short (fixture leaseMs), so an item whose replay died with its worker is
 * sent again, under the same key, a few seconds later.
 *
 * BGS_FAULTS_STOPS (default 50), BGS_FAULTS_RESTARTS (default 3), BGS_E2E_SEED.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createServer } from '../../demo/server/createServer.js';
import { E2eSession, CHROMIUM_ARGS, ROOT, waitFor } from './support/E2eHarness.js';

const STOPS = Number(process.env.BGS_FAULTS_STOPS ?? 50);
const RESTARTS = Number(process.env.BGS_FAULTS_RESTARTS ?? 3);
const SEED = Number(process.env.BGS_E2E_SEED ?? Date.now() % 1e9);
const ENTITIES = 6;
// keepDone: every delivered item stays listed, since the server's log is judged against
// the keys the store listed (pruning is proven in tests/c/test_history.c and Jest).
const PAGE = '/?timeoutMs=4000&sw=' + encodeURIComponent('leaseMs=3000&concurrency=3&keepDone=100000');

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let server;
let profile;
beforeAll(async () => {
  server = await createServer({
    mounts: { '/': join(ROOT, 'tests/e2e/fixtures-faults'), '/bgsync/sw/': join(ROOT, 'sw'), '/bgsync/web/': join(ROOT, 'web') },
  });
  profile = mkdtempSync(join(tmpdir(), 'bgs-crash-loop-'));
});
afterAll(async () => {
  await server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

async function launch() {
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const harness = { url: server.url, sessions: new Set() };
  const session = new E2eSession(harness, context);
  // A persistent context opens with a blank page; the session brings its own.
  await session.init(PAGE, { waitReady: true });
  await session.page.evaluate(() => {
    window.__acks = []; // {n, id, key}
    window.__failed = 0;
    window.__pending = 0;
    window.__burst = (from, count, entities) => {
      for (let n = from; n < from + count; n++) {
        window.__pending++;
        window.bgsTest.client
          .enqueue({ url: '/api/notes', entity: `note:${n % entities}`, body: { n, entity: n % entities } })
          .then(
            (r) => window.__acks.push({ n, id: r.id, key: r.key }),
            () => window.__failed++,
          )
          .finally(() => window.__pending--);
      }
    };
  });
  return { context, session };
}

/** The tail of the browser's console and the worker's version changes, for a failure. */
function versionsAndConsole(session) {
  const versions = session.transitions.map((t) => `${t.versionId}:${t.status}/${t.runningStatus}`).join(' ');
  return `--- browser ---\n${session.diagnostics().slice(-4000)}\n--- worker versions ---\n${versions.slice(-2000)}`;
}

describe('Crash loop', () => {
  it(`keeps every acknowledged item through ${STOPS} worker kills and ${RESTARTS} browser restarts`, async () => {
    const rng = mulberry32(SEED);
    const started = Date.now();
    const acks = new Map(); // key -> {n, id}
    const stored = new Map(); // key -> item (from the worker's own listing, each life)
    let stops = 0;
    let restarts = 0;
    let n = 0;
    let unacknowledged = 0;
    const lives = RESTARTS + 1;
    const perLife = Math.ceil(STOPS / lives);
    server.api.faults.set({ latencyMs: 40 });
    let diag = '';
    let where = 'start';
    try {
      for (let life = 0; life < lives; life++) {
        const { context, session } = await launch();
        const page = session.page;
        try {
          for (let k = 0; k < perLife && stops < STOPS; k++) {
            const logBefore = server.api.log.length;
            if (k % 2 === 0) {
              // A burst of enqueues; the worker dies part-way through it.
              const count = 8 + Math.floor(rng() * 16);
              await page.evaluate(([from, c, e]) => window.__burst(from, c, e), [n, count, ENTITIES]);
              n += count;
              const ackTarget = Math.floor(rng() * count);
              await waitFor(() => page.evaluate((t) => window.__acks.length >= t, ackTarget), 'some acks', { timeoutMs: 15_000 }).catch(() => undefined);
            } else {
              // A replay to a slow server; the worker dies with requests in flight.
              await waitFor(() => server.api.log.length > logBefore, 'a replay to start', { timeoutMs: 8_000 }).catch(() => undefined);
            }
            where = `life ${life}, round ${k}`;
            await session.stopWorker();
            stops++;
            // Wake it (a message) so the next round meets a fresh worker life. A call can
            // fail without reaching the worker: when the kill cut off the client's hello,
            // the calls waiting on it fail with that hello's timeout, and nothing was sent.
            await waitFor(
              () => session.call((c) => c.status().then(() => true, () => false)),
              'a worker that answers again',
              { timeoutMs: 30_000 },
            );
          }
          // Let this life finish what it can, then close the browser in the middle of it.
          await waitFor(() => page.evaluate(() => window.__pending === 0), 'enqueues settled', { timeoutMs: 20_000 });
          const got = await page.evaluate(() => ({ acks: window.__acks, failed: window.__failed }));
          for (const a of got.acks) acks.set(a.key, a);
          unacknowledged += got.failed;
          for (const it of await session.call((c) => c.items({ limit: 10_000 }))) stored.set(it.key, it);
        } finally {
          diag = versionsAndConsole(session);
          await context.close();
        }
        if (life < lives - 1) restarts++;
      }

      // A last life: nothing is killed; everything stored must reach the server.
      server.api.faults.set({ latencyMs: 0 });
      const { context, session } = await launch();
      try {
        await waitFor(async () => {
          // Leases of the last killed replay expire after leaseMs; ask again until drained.
          await session.call((c) => c.syncNow()).catch(() => undefined);
          const items = await session.call((c) => c.items({ limit: 10_000 }));
          for (const it of items) stored.set(it.key, it);
          return items.every((i) => i.state === 'done');
        }, 'every stored item delivered', { timeoutMs: 90_000, intervalMs: 500 });
      } finally {
        diag = versionsAndConsole(session);
        await context.close();
      }
    } catch (err) {
      err.message += `\nseed ${SEED}, at ${where}\n${diag}`;
      throw err;
    }

    // Judge by the server's log.
    const log = server.api.log.filter((e) => e.path === '/api/notes' && e.method === 'POST');
    const applied = new Map(); // key -> count
    for (const e of log) if (e.applied) applied.set(e.key, (applied.get(e.key) ?? 0) + 1);
    const lost = [...acks.keys()].filter((k) => !applied.has(k));
    const twice = [...applied].filter(([, c]) => c > 1).map(([k]) => k);
    const unknown = log.filter((e) => !stored.has(e.key)).map((e) => e.key);
    const repeats = log.length - applied.size;
    // Per-entity order: applied keys of an entity in increasing item id (= enqueue order).
    const idOf = (key) => stored.get(key)?.id ?? acks.get(key)?.id;
    const lastId = new Map();
    const disorder = [];
    for (const e of log) {
      if (!e.applied) continue;
      const item = stored.get(e.key);
      const entity = item?.entity;
      if (!entity) continue;
      const id = idOf(e.key);
      if ((lastId.get(entity) ?? 0) > id) disorder.push(`${entity}: ${e.key} after id ${lastId.get(entity)}`);
      lastId.set(entity, id);
    }
    console.log(
      `crash loop (seed ${SEED}): ${stops} worker stops, ${restarts} browser restarts, ${n} enqueues fired, ` +
        `${acks.size} acknowledged, ${unacknowledged} not acknowledged, ${stored.size} stored, ${applied.size} delivered, ` +
        `${repeats} repeats deduped by key, ${((Date.now() - started) / 1000).toFixed(0)} s`,
    );
    expect(stops).toBeGreaterThanOrEqual(STOPS);
    expect(restarts).toBeGreaterThanOrEqual(RESTARTS);
    expect(acks.size).toBeGreaterThan(0);
    expect(lost).toEqual([]);
    expect(twice).toEqual([]);
    expect(unknown).toEqual([]);
    expect(disorder).toEqual([]);
    // Every repeat in the log is a key that was applied once and answered from the store.
    for (const e of log) if (!e.applied) expect(applied.has(e.key) || e.status === 0 || e.status >= 500).toBe(true);
  }, 900_000);
});
