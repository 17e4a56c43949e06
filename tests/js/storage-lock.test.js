/**
 * StoreLock over a small in-memory LockManager with the Web Locks semantics StoreLock
 * relies on: exclusive grants in request order, `signal` aborts a waiting request,
 * `steal` takes the lock and rejects the holder's request with AbortError. The same
 * module runs against Chromium's navigator.locks in tests/e2e/storage-durability.test.js.
 */
import { loadWasm } from './support/loadWasm.js';
import { acquireStoreLock, guardStore, lockedStore } from '../../sw/StoreLock.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';

class FakeLockManager {
  constructor() {
    this.held = new Map(); // name -> {reject}
    this.queue = new Map(); // name -> [{grant}]
  }

  request(name, options, callback) {
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          this.held.set(name, entry);
          Promise.resolve()
            .then(() => callback({ name, mode: 'exclusive' }))
            .then(
              (v) => {
                if (this.held.get(name) === entry) this._release(name);
                if (!entry.stolen) resolve(v);
              },
              (e) => {
                if (this.held.get(name) === entry) this._release(name);
                if (!entry.stolen) reject(e);
              },
            );
        },
        steal: () => {
          entry.stolen = true;
          reject(new DOMException('stolen', 'AbortError'));
        },
      };
      if (options.steal) {
        this.held.get(name)?.steal();
        entry.grant();
        return;
      }
      options.signal?.addEventListener('abort', () => {
        const q = this.queue.get(name) ?? [];
        const i = q.indexOf(entry);
        if (i >= 0) {
          q.splice(i, 1);
          reject(new DOMException('aborted', 'AbortError'));
        }
      });
      if (!this.held.has(name)) entry.grant();
      else this.queue.set(name, [...(this.queue.get(name) ?? []), entry]);
    });
  }

  _release(name) {
    this.held.delete(name);
    const next = this.queue.get(name)?.shift();
    if (next) next.grant();
  }
}

let module;
beforeAll(async () => {
  module = await loadWasm();
});

const post = (path) => ({ queue: 'outbox', method: 'POST', url: `https://api.test/${path}` });
const opts = { now: () => 1_000, seed: 7, installId: 'test', queues: [{ name: 'outbox' }] };

describe('StoreLock', () => {
  it('lets a second owner in only after the first released (worker update: the new one waits)', async () => {
    const locks = new FakeLockManager();
    const store = new MemoryStore();
    const oldLock = await acquireStoreLock('q', { locks });
    const oldEngine = await Engine.open(module, guardStore(store, oldLock), opts);
    let newLock = null;
    const waiting = acquireStoreLock('q', { locks }).then((l) => (newLock = l));
    await oldEngine.enqueue(post('from-old'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(newLock).toBeNull(); // still waiting while the old worker owns the store
    await oldEngine.close();
    await oldLock.release();
    await waiting;
    expect(newLock.held).toBe(true);
    const newEngine = await Engine.open(module, guardStore(store, newLock), opts);
    expect(newEngine.items().map((i) => i.url)).toEqual(['https://api.test/from-old']);
    await newEngine.close();
    await newLock.release();
  });

  it('gives up waiting after timeoutMs with storage-locked', async () => {
    const locks = new FakeLockManager();
    const holder = await acquireStoreLock('q', { locks });
    await expect(acquireStoreLock('q', { locks, timeoutMs: 5 })).rejects.toMatchObject({ code: 'storage-locked' });
    await holder.release();
    const next = await acquireStoreLock('q', { locks, timeoutMs: 5 });
    expect(next.held).toBe(true);
    await next.release();
  });

  it('on steal, the old owner is told and its next write is refused', async () => {
    const locks = new FakeLockManager();
    const store = new MemoryStore();
    const oldLock = await acquireStoreLock('q', { locks });
    const lost = [];
    oldLock.onLost((e) => lost.push(e));
    const oldEngine = await Engine.open(module, guardStore(store, oldLock), opts);
    await oldEngine.enqueue(post('kept'));
    const thief = await acquireStoreLock('q', { locks, steal: true });
    await new Promise((resolve) => setImmediate(resolve));
    expect(lost).toHaveLength(1);
    expect(oldLock.held).toBe(false);
    await expect(oldEngine.enqueue(post('refused'))).rejects.toMatchObject({ code: 'storage-locked' });
    const newEngine = await Engine.open(module, guardStore(store, thief), opts);
    expect(newEngine.items().map((i) => i.url)).toEqual(['https://api.test/kept']);
    await newEngine.close();
    await thief.release();
  });

  it('is a no-op where the Web Locks API is missing', async () => {
    const lock = await acquireStoreLock('q', { locks: null });
    expect(lock).toMatchObject({ supported: false, held: true });
    await lock.release();
  });

  it('lockedStore (what openStore returns in browsers) holds the lock from Engine.open to Engine.close', async () => {
    const locks = new FakeLockManager();
    const memory = new MemoryStore();
    const first = await Engine.open(module, lockedStore(memory, 'q', { locks }), opts);
    await first.enqueue(post('one'));
    let second = null;
    const opening = Engine.open(module, lockedStore(memory, 'q', { locks }), opts).then((e) => (second = e));
    await new Promise((resolve) => setImmediate(resolve));
    expect(second).toBeNull(); // the new owner waits inside its first load()
    await first.close();
    await opening;
    expect(second.items().map((i) => i.url)).toEqual(['https://api.test/one']);
    await second.close();
    expect(locks.held.size).toBe(0);
  });

  it('a failed Engine.open gives the lock back', async () => {
    const locks = new FakeLockManager();
    const memory = new MemoryStore();
    const e = await Engine.open(module, lockedStore(memory, 'q', { locks }), opts);
    await e.enqueue(post('x'));
    await e.close();
    memory.chunks.get(0).crc ^= 1;
    await expect(Engine.open(module, lockedStore(memory, 'q', { locks }), opts)).rejects.toMatchObject({ code: 'storage-corrupt' });
    expect(locks.held.size).toBe(0);
  });
});
