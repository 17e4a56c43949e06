// The faults fixture worker (tests/e2e/faults-*.test.js): the e2e fixture's worker plus
//   leaseMs=N     the engine's lease (a killed replay's items come back after N ms)
//   version=S     a label the worker reports (an update is a changed query = new bytes)
//   requestTimeoutMs=N  concurrency=N  allow=<origin>  auth=1  storage=indexeddb|opfs
//   onCorrupt=quarantine  (a damaged store is moved aside and a fresh one started)
//   keepDone=N    delivered items kept in the listing (default 100, as in the engine)
import { BgsyncWorker } from '/bgsync/sw/index.js';

const params = new URL(self.location.href).searchParams;
const leaseMs = Number(params.get('leaseMs') ?? 0);
const bgsync = new BgsyncWorker({
  queues: [{
    name: 'default',
    backoff: { initialMs: 200, maxMs: 2_000, jitter: 'none' },
    ...(params.get('keepDone') ? { keepDone: Number(params.get('keepDone')) } : {}),
  }],
  storage: params.get('storage') ?? 'indexeddb',
  concurrency: Number(params.get('concurrency') ?? 4),
  requestTimeoutMs: Number(params.get('requestTimeoutMs') ?? 30_000),
  allowedOrigins: params.getAll('allow'),
  allowTestClock: true,
  engineOptions: {
    ...(leaseMs > 0 ? { leaseMs } : {}),
    ...(params.get('onCorrupt') ? { onCorrupt: params.get('onCorrupt') } : {}),
  },
  credentials: params.get('auth') ? async () => ({ authorization: 'Bearer fresh-from-hook' }) : undefined,
});
bgsync.listen(self);
self.bgsync = bgsync;
self.bgsyncVersion = params.get('version') ?? 'v1';

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
