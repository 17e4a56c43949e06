// The service-worker side as an app uses it (README: Quick start, BgsyncWorker, Credentials,
// A damaged store, Conflicts). Type-checked only, never run: `tsc -p tests/types/tsconfig.sw.json`
// fails when sw/index.d.ts stops describing this API.
import { BgsyncError, BgsyncPlugin, BgsyncWorker, MemoryStore, PROTOCOL_VERSION, Replayer } from 'bgsync/sw';
import type { BgsyncWorkerOptions, Conflict, ConflictResolution, QueueConfig, Recovery } from 'bgsync/sw';

declare const self: ServiceWorkerGlobalScope;
declare function loadToken(): Promise<string | null>;
declare function refreshToken(): Promise<string | null>;

// Quick start.
new BgsyncWorker({
  queues: [{ name: 'default', backoff: { initialMs: 30_000, maxMs: 3_600_000 } }],
}).listen(self);

// Every documented option.
let token = await loadToken();
const uploads: QueueConfig = {
  name: 'uploads',
  backoff: { kind: 'linear', initialMs: 1_000, factor: 2, maxMs: 60_000, jitter: 'full' },
  maxAttempts: 10,
  maxAgeMs: 7 * 24 * 3_600_000,
  maxItems: 1_000,
  maxBytes: 50 * 1024 * 1024,
  maxBodyBytes: 16 * 1024 * 1024,
  keepDone: 0,
  coalesce: true,
  batch: { url: 'https://api.example.com/api/_batch', maxItems: 50 },
  conflict: { strategy: 'merge', fields: { title: 'newer-wins', tags: 'prefer-remote', 'address.city': 'prefer-local' }, default: 'unresolvable', timeField: 'updatedAt' },
  constraints: { unmetered: true, batteryNotLow: true, lowBatteryLevel: 0.2 },
};
const options: BgsyncWorkerOptions = {
  queues: [{ name: 'default', conflict: { strategy: 'custom' } }, uploads, { name: 'notes', batch: null }],
  storage: 'opfs',
  storeName: 'app',
  concurrency: 4,
  eventBudgetMs: 120_000,
  requestTimeoutMs: 20_000,
  allowedOrigins: ['https://api.example.com'],
  stripHeaders: ['authorization', 'cookie', 'proxy-authorization', 'x-session'],
  credentials: async ({ item, refresh }) => {
    if (refresh) token = await refreshToken(); // once per attempt, after a 401
    return token ? { authorization: `Bearer ${token}`, 'x-item': String(item.id) } : null;
  },
  resolveConflict: async (c: Conflict): Promise<ConflictResolution | null> => {
    if (c.remoteDeleted) return { keep: 'remote' };
    if (c.needsRemote) return null; // left in the inbox for the app
    if (c.fields?.includes('title')) return { document: { ...c.merged, title: `${String(c.local?.title)} / ${String(c.remote?.title)}` } };
    return { keep: 'local' };
  },
  pulls: [{ name: 'notes', url: '/api/notes', minIntervalMs: 3_600_000 }],
  pullCacheName: 'app-pulls',
  notify: ({ type, detail }) => {
    if (type === 'completed' || type === 'failed') return { title: `${detail.run.attempted} sent`, tag: 'bgsync' };
    if (type === 'auth') return { title: 'Sign in again', body: detail.url };
    return null;
  },
  largeBodyBytes: 128 * 1024,
  blobStore: 'auto',
  engineOptions: {
    onCorrupt: 'quarantine', // default 'throw'
    verify: 'deep', // default 'basic'
    onRecovery: (report) => {
      const r: Recovery = report;
      console.log(r.code, r.detail, r.movedTo, r.at);
    },
  },
  constraints: { respectSaveData: true },
  conditionsMaxAgeMs: 6 * 3_600_000,
  wasmUrl: new URL('./bgsync-engine.wasm', self.location.href),
  logger: { warn: (msg) => console.warn(msg) },
  now: () => Date.now(),
};
const bgsync = new BgsyncWorker(options).listen(self);
new BgsyncWorker({ storage: 'memory' });
new BgsyncWorker({ storage: new MemoryStore() });
new BgsyncWorker({ headStart: false }); // no ticket stored, no request before the engine opens
const tickets = await new MemoryStore().readAhead();
if (tickets) for (const [queue, t] of Object.entries(tickets.tickets)) console.log(queue, t.item.url, t.body.length, t.validUntil);
new BgsyncWorker();

// @ts-expect-error not a backoff kind
new BgsyncWorker({ queues: [{ name: 'q', backoff: { kind: 'fibonacci' } }] });
// @ts-expect-error a queue needs a name
new BgsyncWorker({ queues: [{ maxAttempts: 3 }] });
// @ts-expect-error a typo in a queue's options is not silently ignored
new BgsyncWorker({ queues: [{ name: 'q', maxAtempts: 3 }] });
// @ts-expect-error not a constraint
new BgsyncWorker({ constraints: { wifiOnly: true } });
// @ts-expect-error onCorrupt is 'throw' or 'quarantine'
new BgsyncWorker({ engineOptions: { onCorrupt: 'ignore' } });
// @ts-expect-error not a strategy
new BgsyncWorker({ queues: [{ name: 'q', conflict: { strategy: 'last-write-wins' } }] });

// What worker code may call itself.
const stored = await bgsync.enqueue({ url: 'https://app.example.com/api/notes', method: 'POST', body: '{}', headers: { 'content-type': 'application/json' }, priority: 'critical', entity: 'note:1', baseVersion: '"v1"', baseDocument: { title: 'x' }, editedAt: 1, conflictStrategy: 'server-wins' });
console.log(stored.id, stored.key, stored.syncRequested === 'registered');
const result = await bgsync.sync('default', { trigger: 'manual', budgetMs: 10_000 });
if (result.run) console.log(result.run.attempted, result.run.result);
else console.log(result.waitingFor?.includes('battery-not-low'));
for (const r of await bgsync.syncAll('push')) console.log(r.queue, r.remaining);
const st = await bgsync.status('default');
console.log(st.state, st.waitingFor, st.recovery?.movedTo);
await bgsync.reportConditions({ metered: false, source: 'app' });
console.log(await bgsync.waitingFor('uploads'));
for (const p of await bgsync.pull({ force: true })) console.log(p.name, p.state);
console.log(bgsync.hasBackgroundSync(), bgsync.instanceId);
await bgsync.retire();

// The Workbox plugin.
const plugin = new BgsyncPlugin(bgsync, { queue: 'default', priority: 'low', entity: (request) => new URL(request.url).pathname });
await plugin.fetchDidFail({ request: new Request('https://app.example.com/api/x', { method: 'POST' }) });
// @ts-expect-error a priority the engine does not know
new BgsyncPlugin(bgsync, { priority: 'urgent' });

// The Replayer, on its own (as BgsyncWorker builds it): checkUrl refuses a URL by throwing.
const engine = await bgsync.engine();
const replayer = new Replayer({
  engine,
  fetch: self.fetch.bind(self),
  concurrency: 2,
  requestTimeoutMs: 5_000,
  checkUrl: (url) => {
    if (!url.startsWith('https://app.example.com/')) throw new BgsyncError('origin-not-allowed', url);
  },
  onOutcome: (item, decision, status) => console.log(item, decision, status),
});
const summary = await replayer.run('default', { deadlineMs: Date.now() + 1_000 });
console.log(summary.attempted, summary.stoppedByDeadline);

// Errors.
try {
  await bgsync.enqueue({ url: 'https://elsewhere.example/x' });
} catch (err) {
  if (err instanceof BgsyncError && err.code === 'origin-not-allowed') console.log(err.detail, PROTOCOL_VERSION);
}
