// The page side as an app uses it (README: Quick start, API, Conflicts). Type-checked only,
// never run: `tsc -p tests/types` fails when web/index.d.ts stops describing this API.
import { BgsyncError, MESSAGES, PROTOCOL_VERSION, PULL_TAG, SyncClient, syncTag } from 'bgsync';
import type { Conflict, EnqueueRequest, Item, Priority, Status, WaitReason } from 'bgsync';

const client = new SyncClient({
  timeoutMs: 10_000,
  readyTimeoutMs: 5_000,
  fallbackIntervalMs: 60_000,
  baseUrl: 'https://app.example.com/',
  watchConditions: false,
  serviceWorker: navigator.serviceWorker,
});
new SyncClient();

const worker: ServiceWorker = await client.ready();
const protocol: number | undefined = client.info?.protocol;
void worker;
void protocol;

// enqueue: every documented field.
const etag = '"v7"';
const request: EnqueueRequest = {
  url: '/api/notes/42',
  method: 'PATCH',
  headers: { 'x-app': '1' },
  body: { title: 'Ford at km 12' },
  queue: 'default',
  priority: 'high',
  entity: 'note:42',
  baseVersion: etag,
  baseDocument: { title: 'Ford', tags: [] },
  editedAt: Date.now(),
  conflictStrategy: { strategy: 'merge', fields: { title: 'newer-wins', tags: 'prefer-remote' }, default: 'unresolvable', timeField: 'updatedAt' },
};
const { id, key } = await client.enqueue(request);
// A DELETE that cancels never-sent changes of a coalescing queue stores nothing: id is null.
if (id !== null && key !== null) console.log(id.toFixed(0), key.toUpperCase());
await client.enqueue({ url: new URL('https://app.example.com/api/files'), body: new Blob(['x']), headers: new Headers({ 'content-type': 'text/plain' }) });
await client.enqueue({ url: '/api/form', body: new FormData(), headers: [['x-a', 'b']], conflictStrategy: 'client-wins' });
await client.enqueue({ url: '/api/raw', method: 'PUT', body: new Uint8Array([1, 2]), baseDocument: '{"a":1}' });

// @ts-expect-error a priority the engine does not know
await client.enqueue({ url: '/api/x', priority: 'urgent' });
// @ts-expect-error url is required
await client.enqueue({ method: 'POST', body: 'x' });
// @ts-expect-error a conflict rule that does not exist
await client.enqueue({ url: '/api/x', conflictStrategy: { strategy: 'merge', fields: { title: 'prefer-mine' } } });

// syncNow
const synced = await client.syncNow();
const held: WaitReason[] | undefined = (await client.syncNow('uploads', { trigger: 'page' })).waitingFor;
console.log(synced.remaining, held);

// status
const status: Status = await client.status();
await client.status('default');
const state: 'idle' | 'scheduled' | 'running' | 'completed' | 'failed' = status.state;
// @ts-expect-error not a state of status()
const wrongState: typeof status.state = 'paused';
void wrongState;
const pending: number = status.counts.pending + status.counts.auth + (status.queues.default?.dead ?? 0);
const next: number | null = status.nextAttemptAt;
if (status.lastRun) console.log(status.lastRun.trigger, status.lastRun.result, status.lastRun.states.done, status.lastRun.error?.code);
const reasons: WaitReason[] = status.waitingFor;
for (const [queue, why] of Object.entries(status.waitingForByQueue)) console.log(queue, why.includes('unmetered-network'));
const { metered, saveData, battery, connectionType, effectiveType, reportedAt } = status.conditions;
console.log(metered === true, saveData, battery?.level, battery?.charging, connectionType === 'cellular', effectiveType, reportedAt);
if (status.recovery) console.log(status.recovery.code, status.recovery.detail, status.recovery.movedTo, status.recovery.at);
console.log(state, pending, next, reasons, status.backgroundSync, status.now);

// items, attempts
const items: Item[] = await client.items({ queue: 'default', state: 'dead', limit: 50 });
for (const item of items) {
  const p: Priority = item.priority;
  console.log(item.id, item.key, item.state, p, item.entity, item.attempts, item.dueAt, item.lastStatus, item.reason);
}
// @ts-expect-error not an item state
await client.items({ state: 'failed' });
for (const a of await client.attempts({ id: 7, limit: 10 })) console.log(a.seq, a.id, a.attempt, a.at, a.status, a.state, a.delayMs);

// dead letters
for (const dead of await client.deadLetters()) {
  await client.retryDead(dead.id);
  await client.discardDead(dead.id);
}
await client.deadLetters('default');

// conflicts, and each form of resolveConflict
const conflicts: Conflict[] = await client.conflicts();
await client.conflicts('default');
for (const c of conflicts) {
  if (c.state !== 'open') continue;
  console.log(c.itemId, c.entity, c.url, c.status, c.strategy, c.base, c.local, c.remote, c.baseVersion, c.remoteVersion, c.fields, c.reason, c.resolution, c.needsRemote, c.remoteDeleted, c.itemState);
  await client.resolveConflict(c.id, { keep: 'remote' });
  await client.resolveConflict(c.id, { keep: 'local' });
  await client.resolveConflict(c.id, { keep: 'local', version: '"v9"' });
  await client.resolveConflict(c.id, { document: { ...c.merged, title: 'both' } });
  const resolved: Conflict = await client.resolveConflict(c.id, { document: { title: 'both' }, version: '"v9"' });
  console.log(resolved.state);
  // @ts-expect-error keep is 'local' or 'remote'
  await client.resolveConflict(c.id, { keep: 'mine' });
}

// credentials, conditions, periodic sync
const released = await client.releaseAuth();
console.log(released?.released);
await client.releaseAuth('default');
const report = await client.reportConditions({ metered: true, saveData: null, battery: { level: 0.5, charging: false }, connectionType: 'wifi', effectiveType: '4g' });
console.log(report.conditions.metered, report.waitingFor.default);
// @ts-expect-error not a connection type
await client.reportConditions({ connectionType: 'fiber' });
const periodic: boolean = await client.registerPeriodicSync({ minIntervalMs: 3_600_000 });
console.log(periodic);

// events: each with its typed detail
client.addEventListener('progress', (e) => console.log(`${e.detail.done} of ${e.detail.total}`, e.detail.queue, e.detail.id, e.detail.key, e.detail.status, e.detail.state));
client.addEventListener('status', (e) => console.log(e.detail.state, e.detail.counts.pending));
client.addEventListener('completed', (e) => console.log(e.detail.queue, e.detail.run.attempted));
client.addEventListener('failed', (e) => console.log(e.detail.queue, e.detail.run.remaining));
client.addEventListener('conflict', (e) => console.log(e.detail.id, e.detail.url, e.detail.status, e.detail.reason));
client.addEventListener('dead', (e) => console.log(e.detail.id, e.detail.method, e.detail.reason));
client.addEventListener('auth', (e) => console.log(e.detail.queue, e.detail.key));
client.addEventListener('pulled', (e) => e.detail.pulls.forEach((p) => console.log(p.name, p.url, p.state, p.status)));
client.addEventListener('deferred', (e) => console.log(e.detail.queue, e.detail.waitingFor.join(), e.detail.remaining, e.detail.trigger));
client.addEventListener('recovered', (e) => console.log(e.detail.code, e.detail.movedTo, e.detail.at, e.detail.blobsMovedTo ?? 'no bodies moved'));
client.addEventListener('progress', (e) => {
  // @ts-expect-error progress has no `run`
  console.log(e.detail.run);
});
client.close();

// errors: one class, a stable code
try {
  await client.enqueue({ url: '/api/x' });
} catch (err) {
  if (err instanceof BgsyncError) {
    const code = err.code;
    if (code === 'queue-full' || code === 'storage-quota' || code === 'origin-not-allowed') console.log(err.detail, err.message, err.name);
    // @ts-expect-error not a code bgsync raises
    if (code === 'queue-ful') console.log('never');
    console.log(JSON.stringify(err.toJSON()), BgsyncError.fromJSON(err.toJSON()).code);
  }
}
const e = new BgsyncError('timeout', 'no answer', { cause: new Error('x') });
console.log(e.code, MESSAGES['queue-full'], PROTOCOL_VERSION, PULL_TAG, syncTag('default'));
