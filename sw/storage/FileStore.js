/**
 * FileStore -- the page store for Node (tests, benchmarks, a server-side queue): a
 * directory holding a LogStore (see LogStore.js for the format and why a commit is
 * atomic). Here:
 *  - the log is one file, log-<g>; an append is a positional write at the end of the
 *    last good record followed by fsync (FileHandle.sync), so a flush resolves only
 *    when its record is on disk; after a failed append the tail is cut before the next;
 *  - writeAtomic writes <name>.tmp, fsyncs it, renames it over <name> and fsyncs the
 *    directory, so the manifest switch is all-or-nothing;
 *  - quarantine renames the directory to <dir>.corrupt-<time> and starts an empty one.
 *
 * `fs` is injectable (node:fs/promises by default) so tests can fail any single
 * operation, including a write that stops half-way.
 */
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { LogStore } from './LogStore.js';

class FileBackend {
  constructor(dir, fs) {
    this.dir = dir;
    this.fs = fs;
    this.log = null; // {gen, handle, size}
    this.needsCut = false; // an append failed: bytes past log.size may be garbage
  }

  _path(name) {
    return join(this.dir, name);
  }

  async _ensureDir() {
    await this.fs.mkdir(this.dir, { recursive: true });
  }

  async read(name) {
    try {
      return new Uint8Array(await this.fs.readFile(this._path(name)));
    } catch (err) {
      if (err?.code === 'ENOENT') return null;
      throw err;
    }
  }

  async _syncDir() {
    const h = await this.fs.open(this.dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }

  async writeAtomic(name, bytes) {
    await this._ensureDir();
    const tmp = this._path(`${name}.tmp`);
    const h = await this.fs.open(tmp, 'w');
    try {
      await writeAll(h, bytes, 0);
      await h.sync();
    } finally {
      await h.close();
    }
    await this.fs.rename(tmp, this._path(name));
    await this._syncDir();
  }

  async remove(name) {
    if (this.log && name === `log-${this.log.gen}`) await this._closeLog();
    await this.fs.rm(this._path(name), { force: true });
  }

  async list() {
    try {
      return await this.fs.readdir(this.dir);
    } catch (err) {
      if (err?.code === 'ENOENT') return [];
      throw err;
    }
  }

  async readLog(gen) {
    if (this.needsCut && this.log?.gen === gen) {
      // An append failed in this process: its bytes (perhaps whole, if only fsync failed)
      // were never acknowledged and must not come back with the reload.
      await this.log.handle.truncate(this.log.size);
      await this.log.handle.sync();
      this.needsCut = false;
    }
    await this._closeLog();
    const bytes = await this.read(`log-${gen}`);
    return bytes === null ? [] : [bytes];
  }

  async _openLog(gen) {
    if (this.log && this.log.gen === gen) return this.log;
    await this._closeLog();
    await this._ensureDir();
    const path = this._path(`log-${gen}`);
    let handle;
    try {
      handle = await this.fs.open(path, 'r+');
    } catch (err) {
      if (err?.code !== 'ENOENT') throw err;
      handle = await this.fs.open(path, 'w+');
    }
    let size;
    try {
      await this._syncDir(); // the file's name is durable before any record in it is acknowledged
      ({ size } = await handle.stat());
    } catch (err) {
      await handle.close();
      throw err;
    }
    this.log = { gen, handle, size };
    return this.log;
  }

  async _closeLog() {
    const log = this.log;
    this.log = null;
    if (log) await log.handle.close();
  }

  async appendLog(gen, bytes) {
    const log = await this._openLog(gen);
    if (this.needsCut) {
      await log.handle.truncate(log.size);
      this.needsCut = false;
    }
    try {
      await writeAll(log.handle, bytes, log.size);
      await log.handle.sync();
    } catch (err) {
      this.needsCut = true;
      throw err;
    }
    log.size += bytes.length;
  }

  async cutLog(gen, segment, validBytes) {
    const log = await this._openLog(gen);
    await log.handle.truncate(validBytes);
    await log.handle.sync();
    log.size = validBytes;
    this.needsCut = false;
  }

  async quarantine() {
    await this._closeLog();
    const movedTo = `${this.dir}.corrupt-${Date.now()}`;
    try {
      await this.fs.rename(this.dir, movedTo);
    } catch (err) {
      if (err?.code !== 'ENOENT') throw err;
    }
    await this._ensureDir();
    return movedTo;
  }

  async close() {
    await this._closeLog();
  }
}

async function writeAll(handle, bytes, position) {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten <= 0) throw Object.assign(new Error('short write'), { code: 'EIO' });
    done += bytesWritten;
  }
}

export class FileStore extends LogStore {
  /**
   * @param {{dir: string, fs?: object, compactMinBytes?: number, compactMaxSegments?: number}} options
   */
  constructor({ dir, fs = nodeFs, ...options }) {
    if (!dir) throw new TypeError('FileStore needs a directory');
    super(new FileBackend(dir, fs), options);
    this.dir = dir;
  }
}
