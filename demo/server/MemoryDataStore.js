/**
 * MemoryDataStore -- the reference API's storage in memory: versioned entities per
 * collection and the idempotency records. The same interface can be backed by a database.
 */
export class MemoryDataStore {
  constructor() {
    this.clear();
  }

  clear() {
    this.collections = new Map(); // name -> Map(id -> {doc, version})
    this.idempotent = new Map(); // key -> {status, body, headers}
    this.nextId = 1;
  }

  _col(name) {
    if (!this.collections.has(name)) this.collections.set(name, new Map());
    return this.collections.get(name);
  }

  list(collection) {
    return [...this._col(collection).values()].map((e) => e.doc);
  }

  get(collection, id) {
    return this._col(collection).get(id) ?? null;
  }

  create(collection, doc, now) {
    const id = typeof doc.id === 'string' && doc.id ? doc.id : String(this.nextId++);
    return this.put(collection, id, doc, now);
  }

  put(collection, id, doc, now) {
    const col = this._col(collection);
    const version = (col.get(id)?.version ?? 0) + 1;
    const entry = { doc: { ...doc, id, updatedAt: now }, version };
    col.set(id, entry);
    return entry;
  }

  remove(collection, id) {
    this._col(collection).delete(id);
  }

  getIdempotent(key) {
    return this.idempotent.get(key) ?? null;
  }

  putIdempotent(key, record) {
    this.idempotent.set(key, record);
  }
}
