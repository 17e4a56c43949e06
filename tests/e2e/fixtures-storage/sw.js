// The storage e2e worker: bgsync over the backend named in this script's query string.
//   storage=indexeddb|opfs   store=<name>
//   quotaFlushBytes=N        a flush that writes more than N bytes fails the way a full
//                            disk does (DOMException QuotaExceededError), for browsers
//                            where CDP cannot lower the quota
//   lock=off                 a store object without the Web Lock (diagnosis only)
// Otherwise the store comes from openStore(), so it holds the Web Lock `bgsync:<name>`.
import { BgsyncWorker } from '/bgsync/sw/index.js';
import { IndexedDbStore } from '/bgsync/sw/storage/IndexedDbStore.js';
import { OpfsStore } from '/bgsync/sw/storage/OpfsStore.js';
import { lockedStore } from '/bgsync/sw/StoreLock.js';

const params = new URL(self.location.href).searchParams;
const storage = params.get('storage') ?? 'indexeddb';
const storeName = params.get('store') ?? 'e2e';
const quotaFlushBytes = Number(params.get('quotaFlushBytes') ?? 0);

function customStore() {
  const store = storage === 'opfs' ? new OpfsStore({ name: storeName }) : new IndexedDbStore({ name: storeName });
  if (quotaFlushBytes > 0) {
    const write = store.write.bind(store);
    store.write = async (changes) => {
      const bytes = changes.chunks.length * changes.chunkSize;
      if (bytes > quotaFlushBytes) throw new DOMException(`fixture quota: ${bytes} bytes in one flush`, 'QuotaExceededError');
      return write(changes);
    };
  }
  return params.get('lock') === 'off' ? store : lockedStore(store, storeName);
}

const bgsync = new BgsyncWorker({
  queues: [{ name: 'default', backoff: { jitter: 'none' } }],
  storage: quotaFlushBytes > 0 || params.get('lock') === 'off' ? customStore() : storage,
  storeName,
});
bgsync.listen(self);
self.bgsync = bgsync;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
