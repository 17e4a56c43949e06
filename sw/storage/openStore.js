/**
 * openStore -- picks the page store a service worker uses: IndexedDB (the default) or a
 * store object passed in (tests, custom backends).
 * @param {{storage?: 'indexeddb'|object, name?: string}} options
 */
import { IndexedDbStore } from './IndexedDbStore.js';

export async function openStore({ storage = 'indexeddb', name = 'default' } = {}) {
  if (storage && typeof storage === 'object') return storage;
  if (storage === 'indexeddb') return new IndexedDbStore({ name });
  throw new TypeError(`bgsync: unknown storage backend '${storage}'`);
}
