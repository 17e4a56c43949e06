/**
 * BgsyncError -- the one error type bgsync throws, with a stable kebab-case `code`.
 *
 * Codes from the engine come from BGS_ERRNO_MAP in core/include/bgsync.h (read at run
 * time through bgs_errname); the ones that only JavaScript raises are listed here too.
 * MESSAGES must have an entry for every code: must match the C list.
 */
export const MESSAGES = Object.freeze({
  // From the engine (core/include/bgsync.h).
  'internal-error': 'Internal error in the engine.',
  'out-of-memory': 'The engine ran out of memory.',
  misuse: 'A required argument is missing.',
  'invalid-json': 'An argument is not the JSON it must be.',
  'invalid-argument': 'An argument has a wrong type or value.',
  'invalid-method': 'The HTTP method is not allowed.',
  'invalid-url': 'The URL is not an absolute http(s) URL.',
  'invalid-priority': 'Unknown priority (use critical, high, normal or low).',
  'body-too-large': 'The body is larger than the queue allows.',
  'queue-full': 'The queue is at its item or byte limit.',
  'unknown-queue': 'No queue of that name is configured.',
  'not-found': 'No item with that id.',
  'stale-outcome': 'The outcome is for an attempt that no longer holds.',
  'invalid-state': 'The item is not in a state that allows this.',
  'storage-failed': 'The storage layer failed; the call was not saved.',
  'storage-corrupt': 'The stored queue is damaged.',
  'batch-not-configured': 'The queue has no batch endpoint.',
  'invalid-document': 'A document is not a JSON object within the limits (1 MiB, 64 levels deep).',
  // Raised by the JavaScript glue.
  'storage-quota': 'The browser refused to store more data (quota exceeded); the call was not saved.',
  'engine-closed': 'The engine is closed.',
  'storage-locked': 'Another service worker owns this queue\'s storage; the call was not saved.',
  'origin-not-allowed': 'Requests may only go to the app origin or an allowed origin.',
  'no-service-worker': 'No active service worker controls this page.',
  'timeout': 'The service worker did not answer in time.',
  'bad-message': 'The message is malformed.',
  'protocol-mismatch': 'The page and the service worker speak different protocol versions.',
  'unclonable-body': 'The body cannot be sent to the service worker.',
});

export class BgsyncError extends Error {
  /**
   * @param {string} code  a key of MESSAGES
   * @param {string} [detail]  what exactly went wrong
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, detail, options) {
    const base = MESSAGES[code] ?? `Unknown error (${code}).`;
    super(detail ? `${base} ${detail}` : base, options);
    this.name = 'BgsyncError';
    this.code = code;
    this.detail = detail ?? '';
  }

  /** A plain object that crosses postMessage. */
  toJSON() {
    return { name: this.name, code: this.code, message: this.message, detail: this.detail };
  }

  /** Rebuilds an error that crossed postMessage. */
  static fromJSON(obj) {
    if (obj && typeof obj.code === 'string') return new BgsyncError(obj.code, obj.detail || undefined);
    return new BgsyncError('internal-error', String(obj?.message ?? obj));
  }
}
