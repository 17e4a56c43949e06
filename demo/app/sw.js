// The demo's service worker: bgsync owns the outbox; a small app-shell cache makes the
// page itself open offline. The page's Settings panel writes its choices into this
// script's query string (a changed query is a new worker version, like an app update):
//   backoff=exponential|linear  initialMs  maxMs  jitter=none|equal|full  maxAttempts
//   conflict=manual|merge|server-wins|client-wins  storage=indexeddb|opfs|memory
//   testClock=1 (tests only: the page may move the engine's clock, see app.js TEST_CLOCK)
import { BgsyncWorker } from '/bgsync/sw/index.js';

const params = new URL(self.location.href).searchParams;
const pick = (name, allowed, fallback) => (allowed.includes(params.get(name)) ? params.get(name) : fallback);
const int = (name, fallback, min, max) => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isInteger(v) && v >= min && v <= max ? v : fallback;
};

export const SETTINGS = Object.freeze({
  backoff: {
    kind: pick('backoff', ['exponential', 'linear'], 'exponential'),
    initialMs: int('initialMs', 3_000, 100, 3_600_000),
    factor: 2,
    maxMs: int('maxMs', 60_000, 100, 86_400_000),
    jitter: pick('jitter', ['none', 'equal', 'full'], 'equal'),
  },
  maxAttempts: int('maxAttempts', 8, 0, 1000),
  conflict: { strategy: pick('conflict', ['manual', 'merge', 'server-wins', 'client-wins'], 'manual') },
  storage: pick('storage', ['indexeddb', 'opfs', 'memory'], 'indexeddb'),
});

const bgsync = new BgsyncWorker({
  queues: [
    {
      name: 'default',
      backoff: SETTINGS.backoff,
      maxAttempts: SETTINGS.maxAttempts,
      conflict: SETTINGS.conflict,
    },
  ],
  storage: SETTINGS.storage,
  storeName: `demo-${SETTINGS.storage}`,
  allowTestClock: params.get('testClock') === '1',
});
bgsync.listen(self);
self.bgsync = bgsync; // for DevTools: bgsync.status()

// ---------------------------------------------------------------------------------------
// App shell: network first (the demo server never caches), the cached copy when offline.

const SHELL_CACHE = 'field-log-shell-v1';
const SHELL = [
  '/',
  '/index.html',
  '/app.js',
  '/timeline.js',
  '/dom.js',
  '/styles.css',
  '/manifest.webmanifest',
  '/icons/icon.svg',
  '/icons/icon-192.png',
  '/icons/icon-512.png',
  '/icons/icon-maskable-512.png',
  '/bgsync/web/index.js',
  '/bgsync/web/SyncClient.js',
  '/bgsync/web/BgsyncError.js',
  '/bgsync/web/protocol.js',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      // One missing file must not block the install: cache what is there.
      await Promise.all(SHELL.map((url) => cache.add(url).catch(() => undefined)));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/api/') || url.pathname.startsWith('/__control/')) return;
  event.respondWith(
    (async () => {
      try {
        const response = await fetch(event.request);
        if (response.ok) {
          const copy = response.clone();
          caches.open(SHELL_CACHE).then((c) => c.put(event.request, copy)).catch(() => undefined);
        }
        return response;
      } catch (err) {
        const cached = await caches.match(event.request, { ignoreSearch: url.pathname === '/' });
        if (cached) return cached;
        throw err;
      }
    })(),
  );
});
