/**
 * openStore -- picks the page store a service worker (or Node) uses:
 *  - 'indexeddb' (the default): IndexedDbStore, database `bgsync:<name>`;
 *  - 'opfs': OpfsStore, directory `bgsync-<name>` in the Origin Private File System;
 *  - 'memory': MemoryStore (nothing survives the worker; tests, demos);
 *  - 'file': FileStore in `dir` (Node only; imported on demand so browsers never load node:fs);
 *  - a store object passed in (tests, custom backends) is returned as is.
 * @param {{storage?: 'indexeddb'|'opfs'|'memory'|'file'|object, name?: string, dir?: string}} options
 */
import { IndexedDbStore } from './IndexedDbStore.js';
import { OpfsStore } from './OpfsStore.js';
import { MemoryStore } from './MemoryStore.js';

export async function openStore({ storage = 'indexeddb', name = 'default', dir, ...options } = {}) {
  if (storage && typeof storage === 'object') return storage;
  if (storage === 'indexeddb') return new IndexedDbStore({ name, ...options });
  if (storage === 'opfs') return new OpfsStore({ name, ...options });
  if (storage === 'memory') return new MemoryStore();
  if (storage === 'file') {
    const { FileStore } = await import('./FileStore.js');
    return new FileStore({ dir: dir ?? `bgsync-${name}`, ...options });
  }
  throw new TypeError(`bgsync: unknown storage backend '${storage}'`);
}
