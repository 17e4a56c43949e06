/**
 * StoreLock -- one owner per store: the service worker holds the Web Lock
 * `bgsync:<name>` for as long as it owns the engine over that store.
 *
 * Why the new worker WAITS by default (and does not steal): during an update the old
 * worker may still be in a `sync` event with a flush in flight. Stealing the lock takes
 * it away from the old worker but cannot stop a write that is already under way, and
 * two engines writing their own page images into one store interleave pages and
 * corrupt it. Waiting is always safe: a lock is released when its holder calls
 * release() or when the holder's global is destroyed (the browser terminates the old
 * worker once the new one is active and the old one is idle), so the new worker gets
 * the lock moments later and opens the store with everything the old one acknowledged.
 * `steal: true` exists for one case: the caller knows the holder is hung (its events
 * time out). guardStore() then makes the old owner's NEXT write fail with
 * 'storage-locked' instead of writing; a write it already started can still land, which
 * is exactly why stealing is not the default.
 *
 * openStore() does this for the browser backends (lockedStore below): the lock is
 * requested by the store's first load(), i.e. inside Engine.open, and released by its
 * close(), i.e. Engine.close (or a failed Engine.open). By hand:
 *   const lock = await acquireStoreLock(name, { timeoutMs: 30000 });
 *   const store = guardStore(await openStore({ storage, name, lock: false }), lock);
 *   const engine = await Engine.open(module, store, options);
 *   lock.onLost(() => engine.close());   // only after someone stole it
 * Where the Web Locks API is missing the lock is a no-op (`supported: false`).
 */
import { BgsyncError } from '../web/BgsyncError.js';

/**
 * @param {string} [name]  the store name (the lock is `bgsync:<name>`)
 * @param {{locks?: LockManager, steal?: boolean, timeoutMs?: number, signal?: AbortSignal}} [options]
 *   timeoutMs: give up waiting with BgsyncError 'storage-locked' (default: wait forever)
 * @returns {Promise<{name: string, held: boolean, supported: boolean,
 *           release: () => Promise<void>, onLost: (fn: () => void) => void}>}
 */
export async function acquireStoreLock(name = 'default', options = {}) {
  const lockName = `bgsync:${name}`;
  const locks = options.locks ?? globalThis.navigator?.locks;
  const lostHandlers = [];
  if (!locks) {
    return { name: lockName, held: true, supported: false, release: async () => {}, onLost: () => {} };
  }
  let releaseLock;
  const released = new Promise((resolve) => {
    releaseLock = resolve;
  });
  const handle = {
    name: lockName,
    held: false,
    supported: true,
    async release() {
      releaseLock();
      await request.catch(() => {});
    },
    onLost(fn) {
      lostHandlers.push(fn);
    },
  };

  const controller = new AbortController();
  let timer = null;
  if (options.timeoutMs != null && !options.steal) {
    timer = setTimeout(() => controller.abort(), options.timeoutMs);
  }
  options.signal?.addEventListener('abort', () => controller.abort(), { once: true });

  let acquired;
  const gotIt = new Promise((resolve, reject) => {
    acquired = { resolve, reject };
  });
  const request = locks.request(
    lockName,
    options.steal ? { mode: 'exclusive', steal: true } : { mode: 'exclusive', signal: controller.signal },
    async () => {
      if (timer) clearTimeout(timer);
      handle.held = true;
      acquired.resolve(handle);
      await released;
      handle.held = false;
    },
  );
  request.catch((err) => {
    if (timer) clearTimeout(timer);
    if (handle.held) {
      // Someone stole the lock from us: stop writing, tell the owner of the engine.
      handle.held = false;
      for (const fn of lostHandlers) fn(err);
    } else {
      acquired.reject(
        new BgsyncError('storage-locked', `could not get the lock ${lockName}: ${err?.message ?? err}`, { cause: err }),
      );
    }
  });
  return gotIt;
}

/**
 * Wraps a page store so that no write happens without the lock: a write after the lock
 * was lost (stolen) rejects with 'storage-locked' and the engine keeps its last durable
 * state. Reads and other methods pass through.
 */
export function guardStore(store, lock) {
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'write') {
        return async (changes) => {
          if (!lock.held) throw new BgsyncError('storage-locked', `${lock.name} is no longer held`);
          return target.write(changes);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/**
 * A store that takes the lock `bgsync:<name>` on its first load() and gives it back on
 * close(): what openStore() returns for IndexedDB and OPFS, so the worker glue needs no
 * lock code of its own. Writes are guarded (guardStore). `lockOptions` as for
 * acquireStoreLock (steal, timeoutMs, locks).
 */
export function lockedStore(store, name, lockOptions = {}) {
  let lock = null;
  let locking = null; // one request however many reads start at once (load, readAhead)
  const takeLock = async () => {
    if (lock) return;
    locking ??= acquireStoreLock(name, lockOptions).finally(() => {
      locking = null;
    });
    lock = await locking;
  };
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'lock') return lock;
      if (prop === 'load') {
        return async (options) => {
          // The connection opens while the lock is awaited (a cold start waits for both);
          // nothing is read before the lock is held.
          target.prepare?.();
          await takeLock();
          return target.load(options);
        };
      }
      if (prop === 'readAhead') {
        if (typeof target.readAhead !== 'function') return undefined;
        return async () => {
          await takeLock();
          return target.readAhead();
        };
      }
      if (prop === 'write') {
        return async (changes) => {
          if (!lock?.held) throw new BgsyncError('storage-locked', `bgsync:${name} is not held`);
          return target.write(changes);
        };
      }
      if (prop === 'close') {
        return async () => {
          try {
            await target.close?.();
          } finally {
            const l = lock;
            lock = null;
            await l?.release();
          }
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
