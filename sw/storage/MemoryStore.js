/**
 * MemoryStore -- a page store in plain memory: for tests and for pages that only need
 * a queue for their own lifetime. `failNext(error)` makes the next write fail, so the
 * flush-failure semantics can be tested without a browser.
 */
export class MemoryStore {
  constructor() {
    this.chunks = new Map(); // index -> {data, crc}
    this.size = undefined;
    this.writes = 0;
    this.ahead = null; // the head start's tickets (HeadStart.js), as the last write left them
    this._failures = [];
  }

  /** Makes the next write reject with `error` (queued: one per call). */
  failNext(error) {
    this._failures.push(error);
  }

  async load({ onAhead } = {}) {
    onAhead?.(this.size === undefined ? null : this.ahead);
    if (this.size === undefined) return null;
    return {
      size: this.size,
      chunks: [...this.chunks].map(([index, c]) => ({ index, data: c.data.slice(), crc: c.crc })),
    };
  }

  async write(changes) {
    if (this._failures.length > 0) throw this._failures.shift();
    const live = Math.ceil(changes.size / changes.chunkSize);
    for (const c of changes.chunks) this.chunks.set(c.index, { data: c.data.slice(), crc: c.crc });
    for (const index of this.chunks.keys()) if (index >= live) this.chunks.delete(index);
    this.size = changes.size;
    if (changes.ahead !== undefined) this.ahead = changes.ahead;
    this.writes++;
  }

  async readAhead() {
    return this.size === undefined ? null : this.ahead;
  }

  /** Moves the stored pages aside (kept in `quarantined`) and leaves the store empty. */
  async quarantine() {
    this.quarantined = this.quarantined ?? [];
    this.quarantined.push({ size: this.size, chunks: this.chunks });
    this.chunks = new Map();
    this.size = undefined;
    this.ahead = null;
    return { movedTo: `memory:quarantined[${this.quarantined.length - 1}]` };
  }

  close() {}
}
