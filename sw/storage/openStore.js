/**
 * openStore -- picks the page store a service worker (or Node) uses:
 *  - 'indexeddb' (the default): IndexedDbStore, database `bgsync:<name>`;
 *  - 'opfs': OpfsStore, directory `bgsync-<name>` in the Origin Private File System;
 *  - 'memory': MemoryStore (nothing survives the worker; tests, demos);
 *  - 'file': FileStore in `dir` (Node only; imported at run time, hidden from bundlers, so a
 *    service-worker bundle never contains node:fs);
 *  - a store object passed in (tests, custom backends) is returned as is.
 * IndexedDB and OPFS stores are wrapped by lockedStore (StoreLock.js) where Web Locks
 * exist: opening waits for the previous owner (e.g. the old worker during an update).
 * @param {{storage?: 'indexeddb'|'opfs'|'memory'|'file'|object, name?: string, dir?: string,
 *          lock?: false|{steal?: boolean, timeoutMs?: number}}} options
 */
import { IndexedDbStore } from './IndexedDbStore.js';
import { OpfsStore } from './OpfsStore.js';
import { MemoryStore } from './MemoryStore.js';
import { lockedStore } from '../StoreLock.js';
import { importNodeOnlyBeside } from '../importNodeOnly.js';

const FILE_STORE = './FileStore.js'; // a variable: see importNodeOnly.js

export async function openStore({ storage = 'indexeddb', name = 'default', dir, lock = {}, ...options } = {}) {
  if (storage && typeof storage === 'object') return storage;
  // One owner (StoreLock.js): the browser stores take the Web Lock `bgsync:<name>` in their
  // first load() and release it in close(); `lock: false` leaves locking to the caller.
  const owned = (store) => (lock && globalThis.navigator?.locks ? lockedStore(store, name, lock) : store);
  if (storage === 'indexeddb') return owned(new IndexedDbStore({ name, ...options }));
  if (storage === 'opfs') return owned(new OpfsStore({ name, ...options }));
  if (storage === 'memory') return new MemoryStore();
  if (storage === 'file') {
    const { FileStore } = await importNodeOnlyBeside(FILE_STORE, import.meta.url);
    return new FileStore({ dir: dir ?? `bgsync-${name}`, ...options });
  }
  throw new TypeError(`bgsync: unknown storage backend '${storage}'`);
}
