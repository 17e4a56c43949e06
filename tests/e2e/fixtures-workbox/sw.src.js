// A Workbox app's worker (bundled by esbuild in workbox-plugin.test.js): POSTs to /api/
// go NetworkOnly; when the network fails, BgsyncPlugin queues them in bgsync.
import { registerRoute } from 'workbox-routing';
import { NetworkOnly } from 'workbox-strategies';
import { BgsyncWorker, BgsyncPlugin } from '../../../sw/index.js';

const bgsync = new BgsyncWorker({
  queues: [{ name: 'default', backoff: { jitter: 'none' } }],
  allowTestClock: true, // tests only
  // The bundle lives at /sw.js; the .wasm is copied next to it.
  wasmUrl: new URL('./bgsync-engine.wasm', self.location.href),
});
bgsync.listen(self);

registerRoute(
  ({ url }) => url.pathname.startsWith('/api/'),
  new NetworkOnly({ plugins: [new BgsyncPlugin(bgsync, { entity: () => 'workbox' })] }),
  'POST',
);

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
