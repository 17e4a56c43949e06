/**
 * OpfsStore -- the page store in the Origin Private File System, usable inside a
 * service worker, where only the asynchronous OPFS API exists (no sync access handles).
 * The format and the atomicity argument are LogStore's (see LogStore.js); here:
 *
 *  - Every write of a file goes through FileSystemFileHandle.createWritable(): the
 *    browser writes a swap file and replaces the target only on close() (Chromium
 *    renames `<name>.crswap` over it), so a file is either its old or its new content,
 *    never a mix. close() resolving is the durability point we wait for.
 *  - The log is therefore one file per record (`log-<g>-<seq>`), each written whole;
 *    appending to a single file would make createWritable({keepExistingData: true})
 *    copy the whole log on every flush. Each record still carries its length and CRC.
 *    A crash between creating a segment and close() leaves it empty: an empty last
 *    segment is an unacknowledged write, removed at open. A non-empty segment that does
 *    not verify was damaged after it was written whole, wherever it is: `storage-corrupt`
 *    (never dropped, which would lose an acknowledged flush).
 *  - Compaction (LogStore) bounds the number of segments (compactMaxSegments).
 *  - quarantine moves every file to a sibling directory `bgsync-<name>.corrupt-<time>`.
 *
 * Directory: `bgsync-<name>` under navigator.storage.getDirectory().
 */
import { LogStore } from './LogStore.js';

const SEQ_DIGITS = 10;

class OpfsBackend {
  constructor(name, getRoot) {
    this.dirName = `bgsync-${name}`;
    this.getRoot = getRoot;
    this.dir = null;
    this.nextSeq = new Map(); // gen -> next segment number
    this.wholeSegments = true; // see LogStore's FileBackend: only an empty last segment is torn
  }

  async _dir() {
    if (!this.dir) this.dir = await (await this.getRoot()).getDirectoryHandle(this.dirName, { create: true });
    return this.dir;
  }

  async read(name) {
    const dir = await this._dir();
    let handle;
    try {
      handle = await dir.getFileHandle(name);
    } catch (err) {
      if (err?.name === 'NotFoundError' || err?.name === 'TypeMismatchError') return null;
      throw err;
    }
    return new Uint8Array(await (await handle.getFile()).arrayBuffer());
  }

  async writeAtomic(name, bytes) {
    const dir = await this._dir();
    const handle = await dir.getFileHandle(name, { create: true });
    const writable = await handle.createWritable({ keepExistingData: false });
    try {
      await writable.write(bytes);
    } catch (err) {
      await writable.abort().catch(() => {});
      throw err;
    }
    await writable.close(); // the switch: the swap file replaces `name` here
  }

  async remove(name) {
    const dir = await this._dir();
    try {
      await dir.removeEntry(name);
    } catch (err) {
      if (err?.name !== 'NotFoundError') throw err;
    }
  }

  async list() {
    const dir = await this._dir();
    const names = [];
    for await (const name of dir.keys()) names.push(name);
    return names;
  }

  async _segments(gen) {
    const prefix = `log-${gen}-`;
    return (await this.list())
      .filter((n) => n.startsWith(prefix) && !n.endsWith('.crswap'))
      .sort();
  }

  async readLog(gen) {
    const names = await this._segments(gen);
    const out = [];
    for (const name of names) out.push((await this.read(name)) ?? new Uint8Array(0));
    const last = names.at(-1);
    this.nextSeq.set(gen, last ? Number(last.slice(`log-${gen}-`.length)) + 1 : 0);
    this.segmentNames = names;
    return out;
  }

  async appendLog(gen, bytes) {
    if (!this.nextSeq.has(gen)) await this.readLog(gen);
    const seq = this.nextSeq.get(gen);
    // Taken before the write: a failed segment is never reused, a torn one is removed at open.
    this.nextSeq.set(gen, seq + 1);
    await this.writeAtomic(`log-${gen}-${String(seq).padStart(SEQ_DIGITS, '0')}`, bytes);
  }

  async cutLog(gen, segment, validBytes) {
    // Segments hold one record each: a torn one goes entirely.
    const name = this.segmentNames?.[segment];
    if (name && validBytes === 0) await this.remove(name);
  }

  async quarantine() {
    const root = await this.getRoot();
    const movedTo = `${this.dirName}.corrupt-${Date.now()}`;
    const target = await root.getDirectoryHandle(movedTo, { create: true });
    const dir = await this._dir();
    for (const name of await this.list()) {
      const handle = await dir.getFileHandle(name);
      if (typeof handle.move === 'function') {
        await handle.move(target);
      } else {
        const copy = await target.getFileHandle(name, { create: true });
        const w = await copy.createWritable();
        await w.write(await handle.getFile());
        await w.close();
        await dir.removeEntry(name);
      }
    }
    this.nextSeq.clear();
    return movedTo;
  }
}

export class OpfsStore extends LogStore {
  /**
   * @param {{name?: string, getDirectory?: () => Promise<FileSystemDirectoryHandle>,
   *          compactMinBytes?: number, compactMaxSegments?: number}} [options]
   */
  constructor({ name = 'default', getDirectory, ...options } = {}) {
    const getRoot = getDirectory ?? (() => globalThis.navigator.storage.getDirectory());
    super(new OpfsBackend(name, getRoot), { compactMaxSegments: 256, ...options });
    this.name = name;
  }

  /** Removes the store's directory (tests, "start fresh"). */
  async destroy() {
    const root = await this.backend.getRoot();
    await root.removeEntry(this.backend.dirName, { recursive: true }).catch((err) => {
      if (err?.name !== 'NotFoundError') throw err;
    });
    this.backend.dir = null;
    this.backend.nextSeq.clear();
    this.generation = null;
  }
}
