/**
 * The demo server's controls, as the page's "Server controls" panel and the README's curl
 * lines use them: /__control/faults (503 with Retry-After, a seeded random failure rate),
 * /__control/reset; judged by what /api answers. Then `npm start`'s entry point,
 * demo/server/main.js, run as a process: it prints its URL, serves the app and the API,
 * falls back to a free port when its port is taken, and stops on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SEED_NOTES, startDemo } from '../../demo/server/main.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(ROOT, 'demo/server/main.js');

let dir;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'bgs-demo-controls-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('demo server controls', () => {
  let demo;
  beforeAll(async () => {
    demo = await startDemo({ port: 0, dataFile: join(dir, 'controls.sqlite') });
  });
  afterAll(() => demo?.close());
  beforeEach(() => post('/__control/reset', {}));

  function post(path, body, headers = {}) {
    return fetch(`${demo.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  }
  async function setFaults(plan) {
    const res = await post('/__control/faults', plan);
    expect(res.status).toBe(200);
    return res.json();
  }
  const addActivity = (key, place) => post('/api/activities', { place }, { 'idempotency-key': key });

  it('answers 503 with the Retry-After it was given, applies nothing, and serves again once cleared', async () => {
    expect(await setFaults({ status: 503, retryAfter: '10' })).toMatchObject({ status: 503, retryAfter: '10' });
    const read = await fetch(`${demo.url}/api/notes`);
    expect(read.status).toBe(503);
    expect(read.headers.get('retry-after')).toBe('10');
    const write = await addActivity('k-503', 'Riverside park');
    expect(write.status).toBe(503);
    expect(write.headers.get('retry-after')).toBe('10');
    expect(demo.api.store.list('activities')).toEqual([]);

    await setFaults({ status: 0, retryAfter: null });
    const again = await addActivity('k-503', 'Riverside park');
    expect(again.status).toBe(201);
    expect(again.headers.get('retry-after')).toBeNull();
    expect(demo.api.store.list('activities').map((a) => a.place)).toEqual(['Riverside park']);
  });

  it('refuses a fault plan with a wrong value, and keeps the one it had', async () => {
    await setFaults({ status: 503 });
    for (const bad of [{ failureRate: 1.5 }, { status: 42 }, { seed: 'x' }, { latencyMs: -1 }, { nonsense: true }]) {
      const res = await post('/__control/faults', bad);
      expect([JSON.stringify(bad), res.status]).toEqual([JSON.stringify(bad), 400]);
      expect((await res.json()).error).toMatch(/fault plan: bad value/);
    }
    const now = await (await fetch(`${demo.url}/__control/faults`)).json();
    expect(now).toMatchObject({ status: 503, failureRate: 0, latencyMs: 0, seed: 1 });
  });

  it('fails a seeded share of requests the same way every time it is seeded again', async () => {
    const run = async () => {
      await setFaults({ failureRate: 0.5, seed: 7 });
      const statuses = [];
      for (let i = 0; i < 24; i++) statuses.push((await fetch(`${demo.url}/api/notes`)).status);
      return statuses;
    };
    const first = await run();
    const second = await run();
    expect(second).toEqual(first); // reproducible: the generator restarts from the seed
    const failed = first.filter((s) => s === 503).length;
    expect(first.every((s) => s === 200 || s === 503)).toBe(true);
    expect(failed).toBeGreaterThan(0);
    expect(failed).toBeLessThan(first.length);
    // Another seed is another sequence (the seed is really used).
    await setFaults({ failureRate: 0.5, seed: 8 });
    const other = [];
    for (let i = 0; i < 24; i++) other.push((await fetch(`${demo.url}/api/notes`)).status);
    expect(other).not.toEqual(first);

    // Writes under the same plan: exactly those answered 201 were applied.
    await setFaults({ failureRate: 0.5, seed: 7 });
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push((await addActivity(`k-rate-${i}`, `place ${i}`)).status);
    expect(answers.filter((s) => s === 503).length).toBeGreaterThan(0);
    const created = answers.map((s, i) => (s === 201 ? `place ${i}` : null)).filter(Boolean);
    expect(demo.api.store.list('activities').map((a) => a.place)).toEqual(created);
  });

  it('reset clears the faults, the request log, the data and the idempotency records, and seeds the notes again', async () => {
    await setFaults({ latencyMs: 5, failureRate: 0.25, seed: 3 });
    await setFaults({ failureRate: 0 });
    expect((await addActivity('k-reset', 'Depot')).status).toBe(201);
    const edit = await fetch(`${demo.url}/api/notes/shift-plan`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', 'if-match': '"v1"' },
      body: JSON.stringify({ title: 'Changed', text: 'Changed' }),
    });
    expect(edit.status).toBe(200);
    expect(edit.headers.get('etag')).toBe('"v2"');
    expect((await (await fetch(`${demo.url}/__control/log`)).json()).length).toBeGreaterThanOrEqual(2);

    const res = await post('/__control/reset', {});
    expect(await res.json()).toEqual({ ok: true });

    const log = await fetch(`${demo.url}/__control/log`);
    expect(await log.json()).toEqual([]);
    expect(log.headers.get('x-log-length')).toBe('0');
    expect(await (await fetch(`${demo.url}/__control/faults`)).json()).toMatchObject({
      down: false, status: 0, retryAfter: null, latencyMs: 0, failureRate: 0, seed: 1,
    });
    const notes = await (await fetch(`${demo.url}/api/notes`)).json();
    expect(notes.map(({ id, title, text }) => ({ id, title, text }))).toEqual(
      SEED_NOTES.map(({ id, title, text }) => ({ id, title, text })),
    );
    const note = await fetch(`${demo.url}/api/notes/shift-plan`);
    expect(note.headers.get('etag')).toBe('"v1"');
    expect(await (await fetch(`${demo.url}/api/activities`)).json()).toEqual([]);
    // The idempotency record went too: the same key is a new request now.
    const replay = await addActivity('k-reset', 'Depot');
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replay')).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------
// `npm start`'s server: node demo/server/main.js as a child process.

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Starts main.js; `url` resolves with the URL its banner printed (bounded wait). */
function startMain(env) {
  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env: { ...process.env, BGS_DEMO_DATA: join(dir, 'main.sqlite'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out.stderr += d));
  // 'close', not 'exit': by then all of its output has been read.
  const exited = new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const url = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL printed within ${START_TIMEOUT_MS} ms:\n${out.stdout}\n${out.stderr}`)), START_TIMEOUT_MS);
    const look = () => {
      // The banner ends with "Stop: Ctrl+C"; it may arrive in several chunks.
      const m = /running at\s+(http:\/\/127\.0\.0\.1:\d+)\/[^]*Stop: Ctrl\+C/.exec(out.stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', look);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`main.js exited (${code ?? signal}) before printing its URL:\n${out.stdout}\n${out.stderr}`));
    });
  });
  return { child, out, exited, url };
}

/** Sends SIGTERM and waits (bounded) for the exit. */
async function stop({ child, exited }) {
  child.kill('SIGTERM');
  let timer;
  const result = await Promise.race([
    exited,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`main.js did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`)), STOP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  children.delete(child);
  return result;
}

const children = new Set();
afterEach(() => {
  // A failed test must not leave its server running.
  for (const child of children) child.kill('SIGKILL');
  children.clear();
});

describe('npm start server entry (demo/server/main.js)', () => {
  it('prints its URL on the PORT given, serves the app and the API, and stops on SIGTERM', async () => {
    const port = await freePort();
    const run = startMain({ PORT: String(port) });
    const url = await run.url;
    expect(url).toBe(`http://127.0.0.1:${port}`);
    expect(run.out.stdout).toContain(join(dir, 'main.sqlite')); // the data file it was told to use

    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<title>Field Log');
    const notes = await fetch(`${url}/api/notes`);
    expect(notes.status).toBe(200);
    expect((await notes.json()).map((n) => n.id)).toEqual(SEED_NOTES.map((n) => n.id));
    const sw = await fetch(`${url}/bgsync/sw/index.js`);
    expect(sw.status).toBe(200);

    expect(await stop(run)).toEqual({ code: 0, signal: null });
    expect(run.out.stdout).toContain('SIGTERM: stopping the demo server');
    await expect(fetch(`${url}/`)).rejects.toThrow();
  });

  it('falls back to a free port when PORT is taken, and says so', async () => {
    const taken = net.createServer();
    await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address();
    try {
      const run = startMain({ PORT: String(port) });
      const url = await run.url;
      expect(url).not.toBe(`http://127.0.0.1:${port}`);
      expect(run.out.stderr).toContain(`Port ${port} is taken; using a free port instead.`);
      expect((await fetch(`${url}/api/notes`)).status).toBe(200);
      expect(await stop(run)).toEqual({ code: 0, signal: null });
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('refuses a PORT that is not a port number', async () => {
    const run = startMain({ PORT: 'eighty' });
    await expect(run.url).rejects.toThrow(/exited \(1\)/);
    expect(run.out.stderr).toContain("PORT must be a port number (0-65535), not 'eighty'");
    children.delete(run.child);
  });
});
