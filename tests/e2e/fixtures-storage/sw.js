// The storage e2e worker: bgsync over the backend named in this script's query string.
//   storage=indexeddb|opfs   store=<name>
// The store is opened through openStore(), so it holds the Web Lock `bgsync:<name>`.
//   lock=off                 a store object without the lock (diagnosis only)
import { BgsyncWorker } from '/bgsync/sw/index.js';
import { IndexedDbStore } from '/bgsync/sw/storage/IndexedDbStore.js';
import { OpfsStore } from '/bgsync/sw/storage/OpfsStore.js';

const params = new URL(self.location.href).searchParams;
const storage = params.get('storage') ?? 'indexeddb';
const storeName = params.get('store') ?? 'e2e';
const unlocked = { indexeddb: () => new IndexedDbStore({ name: storeName }), opfs: () => new OpfsStore({ name: storeName }) };
const bgsync = new BgsyncWorker({
  queues: [{ name: 'default', backoff: { jitter: 'none' } }],
  storage: params.get('lock') === 'off' ? unlocked[storage]() : storage,
  storeName,
});
bgsync.listen(self);
self.bgsync = bgsync;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
