/**
 * Faults inside each backend, at every point: every file-system operation of FileStore
 * (a write that stops half-way included, and compactions), every OPFS segment write and
 * close, every IndexedDB write transaction aborted after some of its puts; torn and
 * damaged logs; a store that cannot even reload.
 */
import * as fs from 'node:fs/promises';
import { mkdtempSync, rmSync, readdirSync, appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { FileStore } from '../../sw/storage/FileStore.js';
import { OpfsStore } from '../../sw/storage/OpfsStore.js';
import { IndexedDbStore } from '../../sw/storage/IndexedDbStore.js';
import { createOpfsRoot } from './fixtures/opfsFake.js';
import { fakeIdb } from './support/fakeIndexedDb.js';


let module;
beforeAll(async () => {
  module = await loadWasm();
});

const tmpDirs = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'bgs-fault-'));
  tmpDirs.push(d);
  return join(d, 'store');
}

const post = (path) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}` });
const listOf = (engine) => engine.items({ limit: 100000 }).map((i) => `${i.id} ${i.url} ${i.state}`);

async function openEngine(store, options = {}) {
  return Engine.open(module, store, {
    now: () => 1_000,
    seed: 7,
    installId: 'test',
    queues: [{ name: 'outbox', backoff: { jitter: 'none' } }],
    ...options,
  });
}

/** Enqueues n items, three per macrotask, and waits for every flush and reload. */
async function burst(engine, n) {
  const calls = [];
  for (let i = 0; i < n; i++) {
    calls.push(
      engine.enqueue(post(`b${i}`), 'p'.repeat(200)).then(
        (r) => ({ i, ok: true, id: r.id }),
        (e) => ({ i, ok: false, error: e }),
      ),
    );
    if (i % 3 === 2) await new Promise((resolve) => setImmediate(resolve));
  }
  const results = await Promise.all(calls);
  await engine.settle();
  return results;
}

/**
 * Runs a burst with a fault armed, then checks: the rejected calls are typed storage
 * errors, exactly the resolved ones are present, the engine goes on working, and a new
 * process over the same storage (reopen()) sees exactly what was acknowledged.
 */
async function checkBurst(engine, arm, reopen) {
  await engine.enqueue(post('before'));
  const initial = listOf(engine);
  const disarm = arm();
  const results = await burst(engine, 9);
  disarm();
  for (const r of results.filter((x) => !x.ok)) {
    expect(['storage-failed', 'storage-quota']).toContain(r.error.code);
  }
  const after = await engine.enqueue(post('after'));
  const expected = [
    ...initial,
    ...results.filter((r) => r.ok).map((r) => `${r.id} https://api.test/b${r.i} pending`),
    `${after.id} https://api.test/after pending`,
  ];
  expect(listOf(engine)).toEqual(expected);
  await engine.close();
  const reopened = await openEngine(await reopen());
  expect(listOf(reopened)).toEqual(expected);
  await reopened.close();
  return results;
}

/** node:fs/promises where operation number `failAt` (counted once armed) fails. */
function faultyFs() {
  const state = { armed: false, ops: 0, failAt: 0, fired: false };
  const hit = () => {
    if (!state.armed) return false;
    state.ops++;
    if (state.ops === state.failAt) {
      state.fired = true;
      return true;
    }
    return false;
  };
  const eio = () => Object.assign(new Error('injected I/O error'), { code: 'EIO' });
  const wrap = (h) => ({
    async write(buf, off, len, pos) {
      if (hit()) {
        const half = Math.floor(len / 2); // a write that stops half-way
        if (half > 0) await h.write(buf, off, half, pos);
        throw eio();
      }
      return h.write(buf, off, len, pos);
    },
    async sync() {
      if (hit()) throw eio();
      return h.sync();
    },
    async truncate(n) {
      if (hit()) throw eio();
      return h.truncate(n);
    },
    stat: () => h.stat(),
    close: () => h.close(),
  });
  return {
    state,
    async open(...a) {
      if (hit()) throw eio();
      return wrap(await fs.open(...a));
    },
    async readFile(...a) {
      if (hit()) throw eio();
      return fs.readFile(...a);
    },
    async rename(...a) {
      if (hit()) throw eio();
      return fs.rename(...a);
    },
    async rm(...a) {
      if (hit()) throw eio();
      return fs.rm(...a);
    },
    async readdir(...a) {
      if (hit()) throw eio();
      return fs.readdir(...a);
    },
    mkdir: (...a) => fs.mkdir(...a),
  };
}

describe('FileStore under file-system faults', () => {
  const options = { compactMinBytes: 1, compactMaxSegments: 2 }; // compactions inside the burst too

  it('keeps exactly the acknowledged state whichever operation fails', async () => {
    // How many operations a clean burst makes.
    const probe = faultyFs();
    const probeEngine = await openEngine(new FileStore({ dir: tempDir(), fs: probe, ...options }));
    await checkBurst(
      probeEngine,
      () => {
        Object.assign(probe.state, { armed: true, failAt: -1 });
        return () => (probe.state.armed = false);
      },
      async () => new FileStore({ dir: probeEngine.store.dir }),
    );
    const total = probe.state.ops;
    expect(total).toBeGreaterThan(20);

    let fired = 0;
    let rejectedRuns = 0;
    for (let k = 1; k <= total; k++) {
      const dir = tempDir();
      const f = faultyFs();
      const engine = await openEngine(new FileStore({ dir, fs: f, ...options }));
      const results = await checkBurst(
        engine,
        () => {
          Object.assign(f.state, { armed: true, failAt: k });
          return () => (f.state.armed = false);
        },
        async () => new FileStore({ dir }),
      );
      if (f.state.fired) fired++;
      if (results.some((r) => !r.ok)) rejectedRuns++;
    }
    expect(fired).toBe(total);
    // Not vacuous: most operations belong to compactions (whose failures only delay the
    // next one), but the appends of the burst (three flushes or more) were hit too.
    expect(rejectedRuns).toBeGreaterThanOrEqual(3);
  }, 120000);

  it('ignores a torn tail at open and appends after the last good record', async () => {
    const dir = tempDir();
    const engine = await openEngine(new FileStore({ dir }));
    for (let i = 0; i < 3; i++) await engine.enqueue(post(`t${i}`));
    const before = listOf(engine);
    await engine.close();
    const log = join(dir, readdirSync(dir).find((n) => n.startsWith('log-')));
    const whole = readFileSync(log);
    // Half of a copy of the first record: a crash in the middle of an append.
    appendFileSync(log, whole.subarray(0, 16 + 3000));
    const store = new FileStore({ dir });
    const again = await openEngine(store);
    expect(store.stats.tornTails).toBe(1);
    expect(listOf(again)).toEqual(before);
    const more = await again.enqueue(post('more'));
    await again.close();
    const third = await openEngine(new FileStore({ dir }));
    expect(listOf(third)).toEqual([...before, `${more.id} https://api.test/more pending`]);
    await third.close();
  });

  it('ignores zero-filled blocks a crash left after the last record', async () => {
    const dir = tempDir();
    const engine = await openEngine(new FileStore({ dir }));
    await engine.enqueue(post('z'));
    const before = listOf(engine);
    await engine.close();
    const log = join(dir, readdirSync(dir).find((n) => n.startsWith('log-')));
    appendFileSync(log, new Uint8Array(8192));
    const again = await openEngine(new FileStore({ dir }));
    expect(listOf(again)).toEqual(before);
    await again.close();
  });

  it('reports damage in the middle of the log as storage-corrupt', async () => {
    const dir = tempDir();
    const engine = await openEngine(new FileStore({ dir }));
    for (let i = 0; i < 3; i++) await engine.enqueue(post(`m${i}`));
    await engine.close();
    const log = join(dir, readdirSync(dir).find((n) => n.startsWith('log-')));
    const bytes = readFileSync(log);
    bytes[40] ^= 1;
    writeFileSync(log, bytes);
    await expect(openEngine(new FileStore({ dir }))).rejects.toMatchObject({ code: 'storage-corrupt' });
  });

  it('opens the old generation when a compaction stopped before the manifest switch', async () => {
    const dir = tempDir();
    const store = new FileStore({ dir });
    const engine = await openEngine(store);
    for (let i = 0; i < 5; i++) await engine.enqueue(post(`k${i}`));
    const before = listOf(engine);
    // A compaction that wrote its snapshot but died before switching.
    const writeManifest = store._writeManifest.bind(store);
    store._writeManifest = async () => {
      throw new Error('crash');
    };
    await expect(store.compact()).rejects.toThrow('crash');
    store._writeManifest = writeManifest;
    await engine.close();
    expect(readdirSync(dir)).toContain('snapshot-1');
    const again = await openEngine(new FileStore({ dir }));
    expect(listOf(again)).toEqual(before);
    expect(readdirSync(dir)).not.toContain('snapshot-1'); // the leftover is gone
    await again.close();
  });
  // Found by the k-th-operation test above: the rename of the manifest succeeded, the
  // fsync after it failed, and the store went on appending to the OLD generation's log,
  // which the next open ignores (and removes): acknowledged writes were lost.
  it('appends to the new generation when the manifest switched but its write reported a failure', async () => {
    const dir = tempDir();
    const store = new FileStore({ dir });
    const engine = await openEngine(store);
    for (let i = 0; i < 3; i++) await engine.enqueue(post(`m${i}`));
    const writeManifest = store._writeManifest.bind(store);
    store._writeManifest = async (g) => {
      await writeManifest(g); // the switch is on disk...
      throw Object.assign(new Error('injected fsync failure'), { code: 'EIO' }); // ...but reported failed
    };
    await expect(store.compact()).rejects.toThrow('injected');
    store._writeManifest = writeManifest;
    const after = await engine.enqueue(post('after'));
    const expected = listOf(engine);
    expect(expected).toContain(`${after.id} https://api.test/after pending`);
    await engine.close();
    const again = await openEngine(new FileStore({ dir }));
    expect(listOf(again)).toEqual(expected);
    await again.close();
  });
});

describe('OpfsStore under faults', () => {
  it.each(['write', 'close'])('keeps exactly the acknowledged state when the k-th segment %s fails, for every k', async (op) => {
    let fired = 0;
    for (let k = 1; k <= 20; k++) {
      const root = createOpfsRoot();
      const open = () => new OpfsStore({ name: 't', getDirectory: async () => root });
      const engine = await openEngine(open());
      let n = 0;
      const take = root.faults.take.bind(root.faults);
      const arm = () => {
        root.faults.take = (o, name) => (o === op && name.startsWith('log-') && ++n === k ? true : take(o, name));
        return () => (root.faults.take = take);
      };
      const results = await checkBurst(engine, arm, async () => open());
      if (n < k) break; // the burst made fewer segment writes than k
      expect(results.some((r) => !r.ok)).toBe(true);
      fired++;
    }
    expect(fired).toBeGreaterThanOrEqual(3);
  });

  // A segment is written whole (swap file, renamed on close()), so the last one can be
  // torn only by a crash before close(): it is then empty. Anything else is damage.
  async function opfsWithThree() {
    const root = createOpfsRoot();
    const open = () => new OpfsStore({ name: 't', getDirectory: async () => root });
    const engine = await openEngine(open());
    for (let i = 0; i < 3; i++) await engine.enqueue(post(`o${i}`));
    const before = listOf(engine);
    await engine.close();
    const dir = await root.getDirectoryHandle('bgsync-t');
    const segments = [];
    for await (const name of dir.keys()) if (name.startsWith('log-')) segments.push(name);
    segments.sort();
    return { root, open, dir, before, last: await dir.getFileHandle(segments.at(-1)) };
  }

  it('refuses with storage-corrupt a damaged LAST segment instead of dropping an acknowledged flush', async () => {
    const { open, before, last } = await opfsWithThree();
    expect(before).toHaveLength(3);
    last.bytes = last.bytes.slice();
    last.bytes[last.bytes.length - 10] ^= 0x20;
    await expect(openEngine(open())).rejects.toMatchObject({ code: 'storage-corrupt' });
  });

  it('removes an empty last segment (a crash before close()) and keeps every acknowledged item', async () => {
    const { open, dir, before, last } = await opfsWithThree();
    const [, gen, seq] = last.name.split('-');
    const next = `log-${gen}-${String(Number(seq) + 1).padStart(seq.length, '0')}`;
    await dir.getFileHandle(next, { create: true }); // created, never written
    const again = await openEngine(open());
    expect(listOf(again)).toEqual(before);
    const more = await again.enqueue(post('after'));
    await again.close();
    const third = await openEngine(open());
    expect(listOf(third)).toEqual([...before, `${more.id} https://api.test/after pending`]);
    await third.close();
  });
});

(fakeIdb ? describe : describe.skip)('IndexedDbStore under aborted transactions', () => {
  it('keeps exactly the acknowledged state when the k-th write transaction aborts half-way, for every k', async () => {
    const proto = fakeIdb.IDBObjectStore.prototype;
    const put = proto.put;
    let fired = 0;
    for (let k = 1; k <= 20; k++) {
      const factory = new fakeIdb.IDBFactory();
      const open = () => new IndexedDbStore({ name: 't', indexedDB: factory });
      const store = open();
      const engine = await openEngine(store);
      let writes = 0;
      let armed = false;
      const write = store.write.bind(store);
      store.write = (changes) => {
        if (armed) writes++;
        return write(changes);
      };
      try {
        // After the first put of the k-th write transaction, abort it.
        proto.put = function patched(...args) {
          const req = put.apply(this, args);
          if (armed && writes === k && this.name === 'chunks' && !this.transaction._bgsAborted) {
            this.transaction._bgsAborted = true;
            this.transaction.abort();
          }
          return req;
        };
        const arm = () => {
          armed = true;
          return () => (armed = false);
        };
        const results = await checkBurst(engine, arm, async () => {
          proto.put = put;
          return open();
        });
        if (writes < k) break;
        expect(results.some((r) => !r.ok)).toBe(true);
        fired++;
      } finally {
        proto.put = put;
      }
    }
    expect(fired).toBeGreaterThanOrEqual(2);
  });
});

(fakeIdb ? describe : describe.skip)('IndexedDbStore when its database is deleted under a running engine', () => {
  it('refuses the next write instead of storing a delta into a new empty database; later calls are durable', async () => {
    const factory = new fakeIdb.IDBFactory();
    const open = () => new IndexedDbStore({ name: 't', indexedDB: factory });
    const engine = await openEngine(open());
    for (let i = 0; i < 3; i++) await engine.enqueue(post(`before${i}`));
    await new Promise((resolve, reject) => {
      const req = factory.deleteDatabase('bgsync:t'); // site data cleared, another tab's cleanup
      req.onsuccess = resolve;
      req.onerror = () => reject(req.error);
      req.onblocked = () => reject(new Error('blocked: the store did not let go'));
    });
    await expect(engine.enqueue(post('first-after'))).rejects.toMatchObject({ code: 'storage-failed' });
    await engine.configureQueue({ name: 'outbox', backoff: { jitter: 'none' } });
    const after = [];
    for (let i = 0; i < 2; i++) after.push((await engine.enqueue(post(`after${i}`))).key);
    await engine.close();
    const reopened = await openEngine(open());
    expect(reopened.items().map((i) => i.key)).toEqual(after);
    await reopened.close();
  });
});

describe('Engine.configureQueue and reloads', () => {
  it('a rejected configuration is not re-applied by a later reload: the queue stays configured', async () => {
    // Configurations applied at open live in memory until a flush carries them, so a
    // reload before any flush rebuilds them from what the engine accepted -- never from a
    // call the engine rejected.
    const store = new MemoryStore();
    const engine = await openEngine(store);
    await expect(engine.configureQueue({ name: 'outbox', keepDone: -1 })).rejects.toMatchObject({ code: 'invalid-argument' });
    store.failNext(new Error('write failed')); // the engine reloads from the store
    await expect(engine.enqueue(post('lost'))).rejects.toMatchObject({ code: 'storage-failed' });
    await engine.enqueue(post('after'));
    expect(engine.items().map((i) => i.url)).toEqual(['https://api.test/after']);
    await engine.close();
  });
});

describe('Engine when the store cannot even reload', () => {
  it('rejects calls until the store answers again, then works from the durable state', async () => {
    const store = new MemoryStore();
    const engine = await openEngine(store);
    await engine.enqueue(post('kept'));
    const load = store.load.bind(store);
    let down = true;
    store.load = async () => {
      if (down) throw new Error('store unreachable');
      return load();
    };
    store.failNext(new Error('write failed'));
    await expect(engine.enqueue(post('lost'))).rejects.toMatchObject({ code: 'storage-failed' });
    await expect(engine.enqueue(post('also-lost'))).rejects.toMatchObject({ code: 'storage-failed' });
    down = false;
    await engine.enqueue(post('back'));
    expect(engine.items().map((i) => i.url)).toEqual(['https://api.test/kept', 'https://api.test/back']);
    await engine.close();
  });

  it('reopens a store whose very first flush failed and stores the schema with the next one', async () => {
    const store = new MemoryStore();
    const engine = await openEngine(store);
    // Fresh store object over nothing: fail its first flush after open.
    const store2 = new MemoryStore();
    const e2 = await Engine.open(module, store2, { now: () => 1, seed: 1, installId: 'x' });
    store2.failNext(new Error('nope'));
    await expect(e2.configureQueue({ name: 'outbox' })).rejects.toMatchObject({ code: 'storage-failed' });
    await e2.configureQueue({ name: 'outbox' });
    await e2.enqueue(post('one'));
    await e2.close();
    const e3 = await Engine.open(module, store2, { now: () => 1, seed: 1, installId: 'x' });
    expect(e3.items().map((i) => i.url)).toEqual(['https://api.test/one']);
    await e3.close();
    await engine.close();
  });
});
