/**
 * SqliteDataStore -- the reference API's storage in a SQLite file (better-sqlite3), with
 * the interface of MemoryDataStore: versioned entities per collection and the
 * idempotency records. The demo uses it so that what the server "holds" survives a
 * restart and can be inspected with any SQLite tool (demo/data/reference-api.sqlite).
 *
 * Invariants:
 *  - every write is one statement or one transaction, so a crash never leaves an entity
 *    without its version;
 *  - a put makes version = previous + 1 (1 for a new entity), as MemoryDataStore does, and
 *    survives a restart, so an ETag a client holds stays meaningful;
 *  - documents and idempotency records are stored as JSON text and returned as fresh
 *    objects (callers may mutate what they get).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS entities (
    collection TEXT NOT NULL,
    id         TEXT NOT NULL,
    doc        TEXT NOT NULL,          -- JSON object, includes id and updatedAt
    version    INTEGER NOT NULL,       -- the ETag is "v<version>"
    seq        INTEGER NOT NULL,       -- insertion order, so list() is stable
    PRIMARY KEY (collection, id)
  );
  CREATE TABLE IF NOT EXISTS idempotency (
    key    TEXT PRIMARY KEY,
    record TEXT NOT NULL               -- {status, body, headers} as JSON
  );
  CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
`;

export class SqliteDataStore {
  /**
   * @param {{Database: Function, file: string}} options
   *   Database: the better-sqlite3 constructor (the caller imports it, so a missing
   *   native module is the caller's decision, not a crash here); file: path or ':memory:'.
   */
  constructor({ Database, file }) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    this.file = file;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    const q = (sql) => this.db.prepare(sql);
    this.sql = {
      list: q('SELECT doc FROM entities WHERE collection = ? ORDER BY seq'),
      get: q('SELECT doc, version FROM entities WHERE collection = ? AND id = ?'),
      upsert: q(`INSERT INTO entities (collection, id, doc, version, seq)
                 VALUES (@collection, @id, @doc, 1, (SELECT coalesce(max(seq), 0) + 1 FROM entities))
                 ON CONFLICT (collection, id) DO UPDATE SET doc = excluded.doc, version = version + 1
                 RETURNING version`),
      remove: q('DELETE FROM entities WHERE collection = ? AND id = ?'),
      getIdem: q('SELECT record FROM idempotency WHERE key = ?'),
      putIdem: q('INSERT OR REPLACE INTO idempotency (key, record) VALUES (?, ?)'),
      nextId: q(`INSERT INTO meta (name, value) VALUES ('nextId', 2)
                 ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value - 1 AS id`),
    };
    this._clear = this.db.transaction(() => {
      this.db.exec('DELETE FROM entities; DELETE FROM idempotency; DELETE FROM meta;');
    });
    this._create = this.db.transaction((collection, doc, now) => {
      const id = typeof doc.id === 'string' && doc.id ? doc.id : String(this.sql.nextId.get().id);
      return this.put(collection, id, doc, now);
    });
  }

  clear() {
    this._clear();
  }

  list(collection) {
    return this.sql.list.all(collection).map((r) => JSON.parse(r.doc));
  }

  /** @returns {{doc: object, version: number} | null} */
  get(collection, id) {
    const row = this.sql.get.get(collection, id);
    return row ? { doc: JSON.parse(row.doc), version: row.version } : null;
  }

  create(collection, doc, now) {
    return this._create(collection, doc, now);
  }

  put(collection, id, doc, now) {
    const stored = { ...doc, id, updatedAt: now };
    const { version } = this.sql.upsert.get({ collection, id, doc: JSON.stringify(stored) });
    return { doc: stored, version };
  }

  remove(collection, id) {
    this.sql.remove.run(collection, id);
  }

  getIdempotent(key) {
    const row = this.sql.getIdem.get(key);
    return row ? JSON.parse(row.record) : null;
  }

  putIdempotent(key, record) {
    this.sql.putIdem.run(key, JSON.stringify(record));
  }

  close() {
    this.db.close();
  }
}
