// An app's worker that uses the installed package, as an adopter writes it.
import { BgsyncWorker } from 'bgsync/sw';

new BgsyncWorker({
  queues: [{ name: 'default', backoff: { jitter: 'none' } }],
  allowTestClock: true, // tests only
  // Bundlers put the worker in one file; the .wasm is copied next to it (see the test).
  wasmUrl: new URL('./bgsync-engine.wasm', self.location.href),
}).listen(self);

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
