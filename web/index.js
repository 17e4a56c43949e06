/**
 * bgsync -- what a page imports. Nothing here loads the WebAssembly engine; the page
 * talks to the service worker, which owns it.
 */
export { SyncClient } from './SyncClient.js';
export { BgsyncError, MESSAGES } from './BgsyncError.js';
export { PROTOCOL_VERSION, PULL_TAG, syncTag } from './protocol.js';
