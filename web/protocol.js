/**
 * protocol -- the messages between SyncClient (page) and BgsyncWorker (service worker).
 * Both sides import this file, so the shapes and the version cannot drift apart.
 *
 * Request (page → worker), posted with a MessageChannel port that carries the answer:
 *   {bgsync: PROTOCOL_VERSION, type: <one of REQUEST_TYPES>, args: {...}}
 * Response (on that port):
 *   {bgsync: PROTOCOL_VERSION, ok: true, result} | {bgsync: PROTOCOL_VERSION, ok: false, error: BgsyncError JSON}
 * Batch (page → worker, to a worker whose hello said `batch`): the calls made in one task,
 *   {bgsync, type: 'batch', args: {calls: [{type, args}, ...]}} (at most MAX_BATCH_CALLS),
 *   each answered on the one port as it ends, with its position: {..., index: i}.
 * Broadcast (worker → every window client, through client.postMessage):
 *   {bgsync: PROTOCOL_VERSION, event: <one of EVENT_TYPES>, detail: {...}}
 *
 * The worker trusts nothing in a request: validateRequest() checks every field and the
 * worker ignores what fails (a page of another origin cannot even reach it, but a bug or
 * an injected script on the same origin can send anything).
 */

/** Bumped whenever a shape changes incompatibly; both sides refuse other versions. */
export const PROTOCOL_VERSION = 1;

export const REQUEST_TYPES = Object.freeze([
  'hello',
  'enqueue',
  'status',
  'syncNow',
  'items',
  'deadLetters',
  'retryDead',
  'discardDead',
  'conflicts',
  'resolveConflict',
  'releaseAuth',
  'attempts',
  'testClock',
  'reportConditions',
  'batch',
]);

/** Calls one batch message may carry; SyncClient sends more as several batches. */
export const MAX_BATCH_CALLS = 1000;
/** What a batch may not contain: the greeting, nor another batch. */
const UNBATCHABLE = Object.freeze(['hello', 'batch']);

export const EVENT_TYPES = Object.freeze([
  'progress',
  'status',
  'completed',
  'failed',
  'conflict',
  'dead',
  'auth',
  'pulled',
  'deferred',
  'recovered',
]);

export const METHODS = Object.freeze(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
export const PRIORITIES = Object.freeze(['critical', 'high', 'normal', 'low']);

const MAX_NAME_CHARS = 64;
const MAX_URL_CHARS = 8192;
const MAX_HEADER_COUNT = 64;
const MAX_HEADER_CHARS = 8192;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** NetworkInformation.type and .effectiveType values a conditions report may carry. */
export const CONNECTION_TYPES = Object.freeze(['bluetooth', 'cellular', 'ethernet', 'mixed', 'none', 'other', 'unknown', 'wifi', 'wimax']);
export const EFFECTIVE_TYPES = Object.freeze(['slow-2g', '2g', '3g', '4g']);
/** The condition fields a report may carry (sw/Conditions.js keeps them per source). */
export const CONDITION_FIELDS = Object.freeze(['metered', 'saveData', 'battery', 'connectionType', 'effectiveType']);
/** Who made a conditions report: SyncClient from the browser's APIs, or the app itself. */
export const CONDITION_SOURCES = Object.freeze(['browser', 'app']);

/** The periodicsync tag on which the worker runs its pulls (then replays every queue). */
export const PULL_TAG = 'bgsync:pulls';

/** The sync tag the worker registers for a queue. */
export function syncTag(queue) {
  return `bgsync:${queue}`;
}

/** The queue of a sync tag, or null when the tag is not ours. */
export function queueOfTag(tag) {
  return typeof tag === 'string' && tag.startsWith('bgsync:') ? tag.slice('bgsync:'.length) : null;
}

export function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) &&
    (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);
}

function isName(v) {
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_NAME_CHARS;
}

function isId(v) {
  return Number.isSafeInteger(v) && v > 0;
}

/** Headers as a plain object of string values; null when malformed. */
export function checkHeaders(h) {
  if (h === undefined || h === null) return {};
  if (!isPlainObject(h)) return null;
  const entries = Object.entries(h);
  if (entries.length > MAX_HEADER_COUNT) return null;
  const out = {};
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name) || typeof value !== 'string' || value.length > MAX_HEADER_CHARS) return null;
    if (/[\r\n\0]/.test(value)) return null;
    out[name.toLowerCase()] = value;
  }
  return out;
}

/**
 * Checks a conditions report (reportConditions): every field optional, null = forget it,
 * unknown fields refused (a typo such as `metred` must not pass as an empty report).
 * Returns {report} or {reason}.
 */
export function checkConditionsReport(args) {
  const known = [...CONDITION_FIELDS, 'source'];
  const extra = Object.keys(args).find((k) => !known.includes(k));
  if (extra !== undefined) return { reason: `field ${extra.slice(0, 40)}` };
  const optBool = (v) => v === undefined || v === null || typeof v === 'boolean';
  if (!optBool(args.metered)) return { reason: 'metered' };
  if (!optBool(args.saveData)) return { reason: 'saveData' };
  const b = args.battery;
  if (b !== undefined && b !== null) {
    if (!isPlainObject(b) || Object.keys(b).some((k) => k !== 'level' && k !== 'charging')) return { reason: 'battery' };
    if (!(Number.isFinite(b.level) && b.level >= 0 && b.level <= 1)) return { reason: 'battery.level' };
    if (typeof b.charging !== 'boolean') return { reason: 'battery.charging' };
  }
  const optOf = (v, list) => v === undefined || v === null || list.includes(v);
  if (!optOf(args.connectionType, CONNECTION_TYPES)) return { reason: 'connectionType' };
  if (!optOf(args.effectiveType, EFFECTIVE_TYPES)) return { reason: 'effectiveType' };
  if (args.source !== undefined && !CONDITION_SOURCES.includes(args.source)) return { reason: 'source' };
  if (!CONDITION_FIELDS.some((k) => args[k] !== undefined)) return { reason: 'report (no condition in it)' };
  const report = { source: args.source ?? 'app' };
  for (const k of CONDITION_FIELDS) if (args[k] !== undefined) report[k] = k === 'battery' && b ? { level: b.level, charging: b.charging } : args[k];
  return { report };
}

/**
 * Checks a request's envelope and arguments. Returns {type, args} (normalized) or
 * {reason} explaining why it must be ignored.
 */
export function validateRequest(msg) {
  if (!isPlainObject(msg)) return { reason: 'not an object' };
  if (msg.bgsync !== PROTOCOL_VERSION) return { reason: `protocol version ${String(msg.bgsync)}` };
  if (!REQUEST_TYPES.includes(msg.type)) return { reason: `unknown type ${String(msg.type)}` };
  const args = msg.args === undefined ? {} : msg.args;
  if (!isPlainObject(args)) return { reason: 'args is not an object' };
  const fail = (what) => ({ reason: `${msg.type}: bad ${what}` });
  const optName = (k) => args[k] === undefined || isName(args[k]);
  switch (msg.type) {
    case 'enqueue': {
      if (!isName(args.queue)) return fail('queue');
      if (typeof args.url !== 'string' || args.url.length > MAX_URL_CHARS) return fail('url');
      if (!METHODS.includes(args.method)) return fail('method');
      const headers = checkHeaders(args.headers);
      if (!headers) return fail('headers');
      const b = args.body;
      if (!(b === undefined || b === null || typeof b === 'string' || b instanceof ArrayBuffer ||
            ArrayBuffer.isView(b))) return fail('body');
      if (args.priority !== undefined && !PRIORITIES.includes(args.priority)) return fail('priority');
      if (args.entity !== undefined && (typeof args.entity !== 'string' || args.entity.length > 256)) return fail('entity');
      if (args.baseVersion !== undefined && (typeof args.baseVersion !== 'string' || args.baseVersion.length > 1024)) return fail('baseVersion');
      if (args.baseDocument !== undefined && (typeof args.baseDocument !== 'string' || args.baseDocument.length > 1 << 20)) return fail('baseDocument');
      if (args.editedAt !== undefined && !Number.isFinite(args.editedAt)) return fail('editedAt');
      if (args.conflictStrategy !== undefined && typeof args.conflictStrategy !== 'string' && !isPlainObject(args.conflictStrategy)) return fail('conflictStrategy');
      return { type: msg.type, args: { ...args, headers } };
    }
    case 'conflicts':
      if (!optName('queue')) return fail('queue');
      if (args.state !== undefined && !['open', 'resolved', 'all'].includes(args.state)) return fail('state');
      if (args.entity !== undefined && typeof args.entity !== 'string') return fail('entity');
      if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit > 0 && args.limit <= 10_000)) return fail('limit');
      return { type: msg.type, args };
    case 'status':
    case 'syncNow':
    case 'deadLetters':
    case 'releaseAuth':
      if (!optName('queue')) return fail('queue');
      if (args.trigger !== undefined && !['page', 'online', 'visible', 'timer'].includes(args.trigger)) return fail('trigger');
      return { type: msg.type, args };
    case 'items':
      if (!optName('queue')) return fail('queue');
      if (args.state !== undefined && typeof args.state !== 'string') return fail('state');
      if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit > 0 && args.limit <= 10_000)) return fail('limit');
      return { type: msg.type, args };
    case 'attempts':
      if (args.id !== undefined && !isId(args.id)) return fail('id');
      if (args.limit !== undefined && !(Number.isInteger(args.limit) && args.limit > 0 && args.limit <= 10_000)) return fail('limit');
      return { type: msg.type, args };
    case 'retryDead':
    case 'discardDead':
      if (!isId(args.id)) return fail('id');
      return { type: msg.type, args };
    case 'resolveConflict':
      if (!isId(args.id)) return fail('id');
      if (!isPlainObject(args.resolution)) return fail('resolution');
      return { type: msg.type, args };
    case 'testClock':
      if (!Number.isFinite(args.offsetMs)) return fail('offsetMs');
      return { type: msg.type, args };
    case 'reportConditions': {
      const checked = checkConditionsReport(args);
      if (checked.reason) return fail(checked.reason);
      return { type: msg.type, args: checked.report };
    }
    case 'batch': {
      const calls = args.calls;
      if (!Array.isArray(calls) || calls.length === 0 || calls.length > MAX_BATCH_CALLS) return fail('calls');
      // Each call is checked alone: a bad one is left out ({reason}), the others still run.
      return {
        type: msg.type,
        args: {
          calls: calls.map((call) => (isPlainObject(call) && UNBATCHABLE.includes(call.type)
            ? { reason: `${call.type} in a batch` }
            : validateRequest({ bgsync: PROTOCOL_VERSION, type: call?.type, args: call?.args }))),
        },
      };
    }
    default:
      return { type: msg.type, args };
  }
}
