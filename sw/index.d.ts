// Types of the service-worker side of bgsync ('bgsync/sw'). Must match sw/*.js.
import type { BgsyncError, Status } from '../web/index.js';

/** How a conflict is settled: the local change against the new version, the remote one, or a document. */
export type ConflictResolution = { keep: 'local' | 'remote' } | { document: object; version?: string };

export { BgsyncError, PROTOCOL_VERSION } from '../web/index.js';

export interface QueueConfig {
  name: string;
  backoff?: { kind?: 'exponential' | 'linear'; initialMs?: number; factor?: number; maxMs?: number; jitter?: 'none' | 'full' | 'equal' };
  maxAttempts?: number;
  maxAgeMs?: number;
  maxItems?: number;
  maxBytes?: number;
  maxBodyBytes?: number;
  batch?: { url: string; maxItems: number } | null;
  /** Delivered items kept as history, the newest of the queue (default 100; 0 = none); older ones are deleted. */
  keepDone?: number;
  [key: string]: unknown;
}

export interface PageStore {
  load(): Promise<{ size: number; chunks: { index: number; data: Uint8Array; crc: number }[] } | null>;
  write(changes: { chunkSize: number; size: number; chunks: { index: number; data: Uint8Array; crc: number }[] }): Promise<void>;
  close?(): void | Promise<void>;
}

export interface BgsyncWorkerOptions {
  queues?: QueueConfig[];
  /** 'indexeddb' (default), 'opfs', 'memory' or a store object (see sw/storage/openStore.js). */
  storage?: 'indexeddb' | 'opfs' | 'memory' | PageStore;
  storeName?: string;
  /** Requests in flight at once during a replay (default 6). */
  concurrency?: number;
  /** The engine's clock in ms (default Date.now). */
  now?: () => number;
  /** Real time for event budgets (default Date.now). */
  clockMs?: () => number;
  /** Where the .wasm is (default: next to sw/loadEngineModule.js). Bundlers: copy it and pass this. */
  wasmUrl?: string | URL;
  wasmModule?: WebAssembly.Module;
  /** Origins besides the worker's own that items may be sent to. */
  allowedOrigins?: string[];
  /** Stop taking new work after this long in one event (default 150 000). */
  eventBudgetMs?: number;
  requestTimeoutMs?: number;
  /** Headers never stored (default authorization, cookie, proxy-authorization). */
  stripHeaders?: string[];
  /** Fresh credentials at replay; refresh is true once after a 401. */
  credentials?: (ctx: { item: object; refresh: boolean }) => Promise<Record<string, string> | null> | Record<string, string> | null;
  /**
   * Decides conflicts of strategy 'custom' as they arise: gets the inbox record (base,
   * local, remote, fields, merged, ...) and answers {keep: 'local'|'remote'}, {document},
   * or null to leave it in the conflicts inbox for the app. A throw also leaves it there.
   */
  resolveConflict?: (conflict: object) => Promise<ConflictResolution | null> | ConflictResolution | null;
  /** Resources fetched on periodicsync into the Cache API. */
  pulls?: { name: string; url: string; minIntervalMs?: number }[];
  pullCacheName?: string;
  fetch?: typeof fetch;
  logger?: { warn(msg: string): void };
  /** A system notification for a finished run or an item that needs the user (permission required). */
  notify?: (event: { type: 'completed' | 'failed' | 'dead' | 'auth' | 'conflict'; detail: object }) =>
    | ({ title: string } & NotificationOptions)
    | null
    | Promise<({ title: string } & NotificationOptions) | null>;
  /** Where bodies over largeBodyBytes (and Blobs) live: 'auto' (default: IndexedDB/OPFS next to the store), false, or a BlobStore. */
  blobStore?: 'auto' | false | object;
  /** Bodies larger than this go to the blob store (default 65 536). */
  largeBodyBytes?: number;
  /** Passed to Engine.open: blobStore (large bodies), largeBodyBytes, onCorrupt, verify, seed. */
  engineOptions?: Record<string, unknown>;
  /** Tests only: lets a page move the engine clock. */
  allowTestClock?: boolean;
}

export declare class BgsyncWorker {
  constructor(options?: BgsyncWorkerOptions);
  readonly instanceId: string;
  listen(scope?: ServiceWorkerGlobalScope): this;
  engine(): Promise<Engine>;
  enqueue(args: { url: string; method?: string; headers?: Record<string, string>; body?: string | Uint8Array | ArrayBuffer; queue?: string; priority?: string; entity?: string; baseVersion?: string; baseDocument?: string }): Promise<{ id: number; key: string; syncRequested: 'registered' | 'replaying' }>;
  enqueueRequest(request: Request, options?: { queue?: string; priority?: string; entity?: string }): Promise<{ id: number; key: string }>;
  sync(queue: string, options?: { trigger?: string; budgetMs?: number }): Promise<{ queue: string; remaining: number; run: object }>;
  syncAll(trigger: string, budgetMs?: number): Promise<{ queue: string; remaining: number; run: object }[]>;
  status(queue?: string): Promise<Status>;
  pull(options?: { force?: boolean }): Promise<{ name: string; url: string; state: string; status?: number }[]>;
  hasBackgroundSync(): boolean;
  /** Closes the engine for good (done by itself when a newer worker version activates). */
  retire(): Promise<void>;
}

export declare class BgsyncPlugin {
  constructor(worker: BgsyncWorker, options?: { queue?: string; priority?: string; entity?: (request: Request) => string | undefined });
  fetchDidFail(param: { request: Request }): Promise<void>;
}

export declare class Engine {
  static open(module: object, store: PageStore, options?: { now?: () => number; seed?: number; leaseMs?: number; installId?: string; queues?: QueueConfig[] }): Promise<Engine>;
  /** The size limits of a configured queue, as the engine applies them (maxItems, maxBytes: 0 = unbounded). */
  queueLimits(queue: string): Promise<{ maxItems: number; maxBytes: number; maxBodyBytes: number }>;
  enqueue(meta: object, body?: Uint8Array | string): Promise<{ id: number; key: string }>;
  claim(queue: string, max?: number): Promise<object[]>;
  outcome(report: { id: number; attempt: number; status: number; headers?: Record<string, string> }, body?: Uint8Array): Promise<object>;
  body(id: number): Uint8Array;
  status(queue?: string | null): { counts: Record<string, number>; nextWakeAt: number | null; queues: Record<string, object> };
  items(filter?: object): object[];
  close(): Promise<void>;
  [method: string]: unknown;
}

export declare class Replayer {
  constructor(options: { engine: Engine; fetch: typeof fetch; concurrency: number; requestTimeoutMs: number; credentials?: BgsyncWorkerOptions['credentials']; resolveConflict?: BgsyncWorkerOptions['resolveConflict']; clockMs?: () => number; batch?: boolean; onOutcome?: (item: object, decision: object, status: number) => void });
  run(queue: string, options: { deadlineMs: number }): Promise<{ attempted: number; stoppedByDeadline: boolean; states: Record<string, number> }>;
}

export declare function loadEngineModule(options?: { wasmUrl?: string | URL; wasmBinary?: Uint8Array; wasmModule?: WebAssembly.Module }): Promise<object>;
export declare function openStore(options?: { storage?: 'indexeddb' | PageStore | string; name?: string }): Promise<PageStore>;
export declare class IndexedDbStore implements PageStore {
  constructor(options?: { name?: string; indexedDB?: IDBFactory });
  load(): ReturnType<PageStore['load']>;
  write(changes: Parameters<PageStore['write']>[0]): Promise<void>;
  close(): void;
  destroy(): Promise<void>;
}
export declare class OpfsStore implements PageStore {
  constructor(options?: { name?: string });
  load(): ReturnType<PageStore['load']>;
  write(changes: Parameters<PageStore['write']>[0]): Promise<void>;
  close(): void;
}
export declare class BlobStore {
  put(id: string, body: Blob | ArrayBuffer | ArrayBufferView): Promise<void>;
  get(id: string): Promise<Blob | Uint8Array | null>;
  delete(id: string): Promise<void>;
  list(): Promise<string[]>;
}
export declare function openBlobStore(options?: { storage?: 'indexeddb' | 'opfs' | 'memory' | 'file'; name?: string; dir?: string }): BlobStore;
export declare class MemoryStore implements PageStore {
  load(): ReturnType<PageStore['load']>;
  write(changes: Parameters<PageStore['write']>[0]): Promise<void>;
  failNext(error: unknown): void;
  close(): void;
}
