/**
 * Conditions -- what pages report about the device (metered network, Save-Data, battery)
 * and whether a queue's constraints let it send under that. A service worker cannot see
 * most of this itself (no getBattery, no Save-Data preference in Safari or Firefox; no
 * connection type on desktop Chromium), so pages report it (SyncClient does on connect and
 * on every change) and this class keeps the last report.
 *
 * Two layers, each merged field by field (a report changes only the fields it names, and
 * a field given as null is forgotten):
 *   browser  what SyncClient read from navigator.connection / navigator.getBattery()
 *   app      what the app reported itself (client.reportConditions); it wins over browser,
 *            so a late browser reading never undoes an app's own policy
 *
 * The rule for what is not known: a field nobody reported (or that was forgotten, or whose
 * report is older than maxAgeMs) counts as ALLOWED. A constraint holds items back only on
 * a report that says no; bgsync never parks a queue forever because a browser lacks an API.
 *
 * Durability: the record lives in the Cache API (cache `bgsync-conditions`, one entry per
 * store name), written before a report is answered, so a worker the browser starts with
 * no page open (a `sync`, a `push`) still honours the last report. Without the Cache API
 * the record lives in memory for this worker's life only.
 */
import { BgsyncError } from '../web/BgsyncError.js';
import { CONDITION_FIELDS as FIELDS, isPlainObject } from '../web/protocol.js';

/** Why a queue waits, one per constraint, in this order everywhere (status, events). */
export const REASONS = Object.freeze({
  unmetered: 'unmetered-network',
  respectSaveData: 'save-data-off',
  batteryNotLow: 'battery-not-low',
});

/** Below this level and not charging, the battery is low (Android calls 15% low too). */
export const DEFAULT_LOW_BATTERY_LEVEL = 0.15;

export const CONDITIONS_CACHE = 'bgsync-conditions';


/** NetworkInformation.type values that say whether the link costs by the byte. */
const METERED_TYPES = ['cellular'];
const UNMETERED_TYPES = ['wifi', 'ethernet'];

/**
 * A queue's constraints (the worker-wide default merged under the queue's own), checked
 * and filled in; null when none applies. Throws invalid-argument on a bad configuration:
 * a typo must not silently mean "no constraint".
 */
export function checkConstraints(base, own, where) {
  if (base === undefined && own === undefined) return null;
  for (const c of [base, own]) {
    if (c === undefined) continue;
    if (!isPlainObject(c)) throw new BgsyncError('invalid-argument', `${where}: constraints must be an object`);
    for (const [k, v] of Object.entries(c)) {
      if (k === 'lowBatteryLevel') {
        if (!(Number.isFinite(v) && v > 0 && v <= 1)) throw new BgsyncError('invalid-argument', `${where}: lowBatteryLevel must be a number in (0, 1]`);
      } else if (k in REASONS) {
        if (typeof v !== 'boolean') throw new BgsyncError('invalid-argument', `${where}: constraints.${k} must be true or false`);
      } else {
        throw new BgsyncError('invalid-argument', `${where}: unknown constraint '${k}' (use ${Object.keys(REASONS).join(', ')}, lowBatteryLevel)`);
      }
    }
  }
  const c = { unmetered: false, respectSaveData: false, batteryNotLow: false, lowBatteryLevel: DEFAULT_LOW_BATTERY_LEVEL, ...base, ...own };
  return c.unmetered || c.respectSaveData || c.batteryNotLow ? c : null;
}

/** What a connection type says about cost: true, false, or null when it does not tell. */
export function meteredOf(connectionType) {
  if (METERED_TYPES.includes(connectionType)) return true;
  if (UNMETERED_TYPES.includes(connectionType)) return false;
  return null;
}

export class Conditions {
  /**
   * @param {{caches?: () => (CacheStorage|undefined), scopeUrl?: () => (string|undefined),
   *          name: string, now: () => number, maxAgeMs?: number|null, log: {warn: Function}}} options
   */
  constructor({ caches, scopeUrl, name, now, maxAgeMs = null, log }) {
    this._caches = caches ?? (() => undefined);
    this._scopeUrl = scopeUrl ?? (() => undefined);
    this.name = name;
    this.now = now;
    this.maxAgeMs = maxAgeMs;
    this.log = log;
    this.layers = { browser: { at: null, fields: {} }, app: { at: null, fields: {} } };
    this._loaded = null;
    this._tail = Promise.resolve(); // reports apply and persist one after another
  }

  /** Reads the persisted record once; every other method waits for it. */
  load() {
    this._loaded ??= this._read().then(
      (record) => {
        if (record) this.layers = record;
      },
      (err) => this.log.warn(`bgsync: conditions not read (${err?.message ?? err}); nothing reported counts as allowed`),
    );
    return this._loaded;
  }

  /**
   * The conditions in force: each field from the app layer if it has it, else the browser
   * layer, else null (unknown). A layer older than maxAgeMs counts as unknown.
   */
  current() {
    const view = { metered: null, saveData: null, battery: null, connectionType: null, effectiveType: null, reportedAt: null };
    const now = this.now();
    for (const source of ['browser', 'app']) {
      const layer = this.layers[source];
      if (layer.at === null || (this.maxAgeMs !== null && now - layer.at > this.maxAgeMs)) continue;
      for (const k of FIELDS) if (layer.fields[k] !== undefined) view[k] = layer.fields[k];
      view.reportedAt = Math.max(view.reportedAt ?? 0, layer.at);
    }
    return view;
  }

  /** The reasons (REASONS values) why `constraints` do not allow sending under `view`. */
  unmet(constraints, view = this.current()) {
    if (!constraints) return [];
    const out = [];
    if (constraints.unmetered && view.metered === true) out.push(REASONS.unmetered);
    if (constraints.respectSaveData && view.saveData === true) out.push(REASONS.respectSaveData);
    const b = view.battery;
    if (constraints.batteryNotLow && b && !b.charging && b.level < constraints.lowBatteryLevel) out.push(REASONS.batteryNotLow);
    return out;
  }

  /**
   * Applies a validated report (web/protocol.js checkConditionsReport) to its layer and
   * makes it durable. Resolves with the views before and after, once written.
   */
  report({ source = 'app', ...fields }) {
    const work = this._tail.then(async () => {
      await this.load();
      const before = this.current();
      const layer = this.layers[source];
      const next = { ...layer.fields };
      // A connection type speaks for `metered` unless the same report says it outright.
      if (fields.connectionType !== undefined && fields.metered === undefined) {
        fields.metered = fields.connectionType === null ? null : meteredOf(fields.connectionType);
      }
      for (const k of FIELDS) {
        if (fields[k] === undefined) continue;
        if (fields[k] === null) delete next[k];
        else next[k] = fields[k];
      }
      this.layers = { ...this.layers, [source]: { at: this.now(), fields: next } };
      await this._write();
      return { before, after: this.current() };
    });
    this._tail = work.catch(() => undefined);
    return work;
  }

  _key() {
    const base = this._scopeUrl() ?? 'https://bgsync.invalid/';
    return new URL(`/__bgsync/conditions/${encodeURIComponent(this.name)}`, base).href;
  }

  async _read() {
    const caches = this._caches();
    if (!caches) return null;
    const cache = await caches.open(CONDITIONS_CACHE);
    const res = await cache.match(this._key());
    if (!res) return null;
    const record = JSON.parse(await res.text()); // parsed here: res.json() may build objects of another realm
    // Written by this class, but storage can be edited from DevTools: keep only what fits.
    if (!isPlainObject(record) || record.version !== 1) return null;
    const layer = (l) => (isPlainObject(l) && isPlainObject(l.fields) && (l.at === null || Number.isFinite(l.at))
      ? { at: l.at, fields: Object.fromEntries(FIELDS.filter((k) => l.fields[k] !== undefined).map((k) => [k, l.fields[k]])) }
      : { at: null, fields: {} });
    return { browser: layer(record.browser), app: layer(record.app) };
  }

  async _write() {
    const caches = this._caches();
    if (!caches) return;
    try {
      const cache = await caches.open(CONDITIONS_CACHE);
      const body = JSON.stringify({ version: 1, ...this.layers });
      await cache.put(this._key(), new Response(body, { headers: { 'content-type': 'application/json' } }));
    } catch (err) {
      // Still in force for this worker's life; only a restart would forget it.
      this.log.warn(`bgsync: conditions not persisted (${err?.message ?? err})`);
    }
  }
}
