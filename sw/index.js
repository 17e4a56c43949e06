/**
 * bgsync/sw -- what a service worker imports: the worker glue, the engine and the stores.
 *
 *   import { BgsyncWorker } from 'bgsync/sw';
 *   new BgsyncWorker({ queues: [{ name: 'default' }] }).listen(self);
 */
export { BgsyncWorker } from './BgsyncWorker.js';
export { BgsyncPlugin } from './BgsyncPlugin.js';
export { Replayer } from './Replayer.js';
export { Engine } from './Engine.js';
export { loadEngineModule } from './loadEngineModule.js';
export { openStore } from './storage/openStore.js';
export { IndexedDbStore } from './storage/IndexedDbStore.js';
export { MemoryStore } from './storage/MemoryStore.js';
export { OpfsStore } from './storage/OpfsStore.js';
export { BlobStore, openBlobStore } from './BlobStore.js';
export { BgsyncError } from '../web/BgsyncError.js';
export { PROTOCOL_VERSION } from '../web/protocol.js';
