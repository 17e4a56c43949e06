/**
 * Schema versions: a store written by schema v1 (tests/js/fixtures/store-v1.json, made
 * once by make-store-v1.mjs with a v1 build and checked in) opens with today's engine,
 * migrates, keeps every item, key, state and body, and goes on working — over memory
 * and over the file store.
 */
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadWasm } from './support/loadWasm.js';
import { Engine } from '../../sw/Engine.js';
import { MemoryStore } from '../../sw/storage/MemoryStore.js';
import { FileStore } from '../../sw/storage/FileStore.js';

const fixture = JSON.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), 'fixtures/store-v1.json'), 'utf8'));
const decode = (b64) => new Uint8Array(Buffer.from(b64, 'base64'));
const changes = () => ({
  size: fixture.size,
  chunkSize: 4096,
  chunks: fixture.chunks.map((c) => ({ index: c.index, crc: c.crc, data: decode(c.data) })),
});
const pick = (i) => ({ id: i.id, key: i.key, queue: i.queue, method: i.method, url: i.url, state: i.state, priority: i.priority, entity: i.entity, attempts: i.attempts, dueAt: i.dueAt, createdAt: i.createdAt, lastStatus: i.lastStatus });
/** The SQLite header's user_version: the schema version a stored image says it has. */
const userVersion = (chunk0) => new DataView(chunk0.buffer, chunk0.byteOffset).getUint32(60);
/** Today's schema: BGS__SCHEMA_VERSION in core/src/schema.c (bump both together). */
const CURRENT_SCHEMA = 2;

let module;
let dir;
beforeAll(async () => {
  module = await loadWasm();
  dir = mkdtempSync(join(tmpdir(), 'bgs-schema-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const STORES = [
  ['memory', async () => {
    const s = new MemoryStore();
    await s.write(changes());
    return { store: s, reopen: () => s };
  }],
  ['file', async () => {
    const d = join(dir, 'v1');
    const s = new FileStore({ dir: d });
    await s.write(changes());
    return { store: s, reopen: () => new FileStore({ dir: d }) };
  }],
];

describe('a store written by schema v1', () => {
  it('is really v1', () => {
    expect(fixture.schema).toBe(1);
    expect(userVersion(decode(fixture.chunks.find((c) => c.index === 0).data))).toBe(1);
  });

  it.each(STORES)('opens, migrates and keeps everything (%s)', async (_, make) => {
    const { store, reopen } = await make();
    let t = fixture.now;
    const engine = await Engine.open(module, store, { now: () => t, seed: 1 });
    expect(engine.items({ limit: 1000 }).map(pick)).toEqual(fixture.expect.items);
    for (const [name, id] of Object.entries(fixture.expect.ids)) {
      expect(Buffer.from(engine.body(id)).toString('base64')).toBe(fixture.expect.bodies[name]);
    }
    // The migration is durable: the stored header carries today's version.
    await engine.configureQueue({ name: 'outbox', backoff: { jitter: 'none' } });
    const stored = await reopen().load();
    const version = userVersion(stored.chunks.find((c) => c.index === 0).data);
    expect(version).toBe(CURRENT_SCHEMA);

    // It goes on working: expired leases come back with their keys, new items get new ids.
    t += 61_000;
    const again = await engine.claim('outbox', 10);
    const keys = again.map((i) => i.key).sort();
    expect(keys).toEqual(expect.arrayContaining(['fixture-v1.3', 'fixture-v1.5']));
    const added = await engine.enqueue({ queue: 'outbox', method: 'POST', url: 'https://api.example/new' });
    expect(added.id).toBe(6);
    expect(added.key).toBe('fixture-v1.6'); // the install id survived the migration
    await engine.close();

    const reopened = await Engine.open(module, reopen(), { now: () => t, seed: 1 });
    expect(reopened.items({ limit: 1000 }).map((i) => i.key)).toContain('fixture-v1.6');
    await reopened.close();
  });
});
