// Types of the service-worker side of bgsync ('bgsync/sw'). Must match sw/*.js.
import type {
  BgsyncErrorCode,
  Conditions,
  ConditionsReport,
  Conflict,
  ConflictConfig,
  ConflictResolution,
  ConflictStrategyName,
  ItemEventDetail,
  Priority,
  PullResult,
  Recovery,
  RunEventDetail,
  RunSummary,
  Status,
  WaitReason,
  EnqueueFields,
} from '../web/index.js';

export { BgsyncError, PROTOCOL_VERSION } from '../web/index.js';
// The page's types that worker code meets too (hooks, status, results).
export type {
  BgsyncErrorCode,
  Conditions,
  ConditionsReport,
  Conflict,
  ConflictConfig,
  ConflictResolution,
  ConflictStrategyName,
  FieldRule,
  ItemEventDetail,
  Priority,
  PullResult,
  Recovery,
  RunEventDetail,
  RunSummary,
  Status,
  WaitReason,
} from '../web/index.js';

/**
 * When a queue may send, judged on the last conditions pages reported (unknown = allowed).
 * The worker-wide `constraints` are every queue's default; a queue's own override them field by field.
 */
export interface Constraints {
  /** Hold items while a report says the network is metered (cellular). */
  unmetered?: boolean;
  /** Hold items while a report says Save-Data is on. */
  respectSaveData?: boolean;
  /** Hold items while the battery is low: not charging and under lowBatteryLevel. */
  batteryNotLow?: boolean;
  /** 0 < x <= 1, default 0.15. */
  lowBatteryLevel?: number;
}

export interface QueueConfig {
  name: string;
  constraints?: Constraints;
  backoff?: { kind?: 'exponential' | 'linear'; initialMs?: number; factor?: number; maxMs?: number; jitter?: 'none' | 'full' | 'equal' };
  maxAttempts?: number;
  maxAgeMs?: number;
  maxItems?: number;
  maxBytes?: number;
  maxBodyBytes?: number;
  /** Merge the changes of one entity that were never sent (see bgs_enqueue in bgsync.h). */
  coalesce?: boolean;
  /** One request carries up to maxItems items (1..1000); url absolute, on an allowed origin. */
  batch?: { url: string; maxItems: number } | null;
  /** How a 409/412 is settled (default strategy 'manual'); README "Conflicts". */
  conflict?: ConflictConfig;
  /** Delivered items kept as history, the newest of the queue (default 100; 0 = none); older ones are deleted. */
  keepDone?: number;
}

/** The head start's tickets (README "Head start"): what the next claim of each queue hands out. */
export interface HeadStartTickets {
  v: 1;
  tickets: Record<string, { item: ClaimedItem; body: Uint8Array; validUntil: number | null }>;
}

export interface PageStore {
  load(): Promise<{ size: number; chunks: { index: number; data: Uint8Array; crc: number }[] } | null>;
  /** `ahead`, when present, is stored in the same transaction as the chunks (null: none any more). */
  write(changes: { chunkSize: number; size: number; chunks: { index: number; data: Uint8Array; crc: number }[]; ahead?: HeadStartTickets | null }): Promise<void>;
  /** The tickets the last write stored: a store with this takes part in the head start. */
  readAhead?(): Promise<HeadStartTickets | null>;
  close?(): void | Promise<void>;
  /** Sets the damaged contents aside and leaves the store empty; needed for onCorrupt 'quarantine'. */
  quarantine?(): Promise<{ movedTo: string }>;
}

/** An item as a replay claims it: what the credentials hook and onOutcome get. */
export interface ClaimedItem {
  id: number;
  key: string;
  queue: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  priority: Priority;
  entity: string | null;
  /** The lease's attempt number. */
  attempt: number;
  bodySize: number;
  leaseUntil: number;
  baseVersion: string | null;
  bodyRef: { id: string; size: number } | null;
}

/** Opening the store: verification and what to do with a damaged one (README "A damaged store"). */
export interface EngineOptions {
  /** 'throw' (default): calls reject with storage-corrupt; 'quarantine': set it aside, start fresh. */
  onCorrupt?: 'throw' | 'quarantine';
  /** 'deep' also reads every item row at open (default 'basic'). */
  verify?: 'basic' | 'deep';
  /** Called once a damaged store was quarantined; pages also get a `recovered` event. */
  onRecovery?: (report: Recovery) => void;
  /** Jitter and key seed (tests: deterministic backoff). */
  seed?: number;
  leaseMs?: number;
  installId?: string;
  /** Queues whose head-start tickets each flush stores, when the store has readAhead() (BgsyncWorker sets it). */
  headStartQueues?: string[];
}

/** What the notify hook hears: a finished run, or an item that needs the user. */
export type NotifyEvent =
  | { type: 'completed' | 'failed'; detail: RunEventDetail }
  | { type: 'dead' | 'auth' | 'conflict'; detail: ItemEventDetail };

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
  /** Fresh credentials at replay; refresh is true once after a 401. null: the item waits as `auth`. */
  credentials?: (ctx: { item: ClaimedItem; refresh: boolean }) => Promise<Record<string, string> | null> | Record<string, string> | null;
  /**
   * Decides conflicts of strategy 'custom' as they arise: gets the inbox record (base,
   * local, remote, fields, merged, ...) and answers {keep: 'local'|'remote'}, {document},
   * or null to leave it in the conflicts inbox for the app. A throw also leaves it there.
   */
  resolveConflict?: (conflict: Conflict) => Promise<ConflictResolution | null> | ConflictResolution | null;
  /** Resources fetched on periodicsync into the Cache API (url: relative to the worker). */
  pulls?: { name: string; url: string; minIntervalMs?: number }[];
  pullCacheName?: string;
  fetch?: typeof fetch;
  logger?: { warn(msg: string): void };
  /** A system notification for a finished run or an item that needs the user (permission required). */
  notify?: (event: NotifyEvent) =>
    | ({ title: string } & NotificationOptions)
    | null
    | Promise<({ title: string } & NotificationOptions) | null>;
  /** Where bodies over largeBodyBytes (and Blobs) live: 'auto' (default: IndexedDB/OPFS next to the store), false, or a BlobStore. */
  blobStore?: 'auto' | false | BlobStore;
  /** Bodies larger than this go to the blob store (default 65 536). */
  largeBodyBytes?: number;
  /** Passed to Engine.open: onCorrupt, verify, onRecovery, seed. */
  engineOptions?: EngineOptions;
  /** Tests only: lets a page move the engine clock. */
  allowTestClock?: boolean;
  /** User constraints of every queue without its own (see Constraints). */
  constraints?: Constraints;
  /** A conditions report older than this (engine time) counts as unknown; default null = never. */
  conditionsMaxAgeMs?: number | null;
  /** A cold start's first request goes out before the engine opens (default true; README "Head start"). */
  headStart?: boolean;
}

/** What BgsyncWorker.enqueue takes: SyncClient's request once encoded (url absolute, body bytes or text). */
export interface WorkerEnqueueArgs extends EnqueueFields {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Uint8Array | ArrayBuffer;
}

/** id and key are null when a DELETE cancelled never-sent changes (coalesce); nothing was stored then. */
export type WorkerEnqueueResult = ({ id: number; key: string; coalesced?: true } | { id: null; key: null; cancelled: number[] }) & {
  syncRequested: 'registered' | 'replaying';
};

/** A replay's result. run is null and waitingFor set when user constraints held the queue back (nothing sent). */
export interface SyncResult {
  queue: string;
  /** Retryable items left (pending, waiting, in flight). */
  remaining: number;
  /** result 'retired': a newer worker version took over during the run. */
  run: RunSummary | (Omit<RunSummary, 'result'> & { result: 'retired' }) | null;
  waitingFor?: WaitReason[];
}

export declare class BgsyncWorker {
  constructor(options?: BgsyncWorkerOptions);
  readonly instanceId: string;
  listen(scope?: ServiceWorkerGlobalScope): this;
  engine(): Promise<Engine>;
  enqueue(args: WorkerEnqueueArgs): Promise<WorkerEnqueueResult>;
  enqueueRequest(request: Request, options?: { queue?: string; priority?: Priority; entity?: string }): Promise<WorkerEnqueueResult>;
  sync(queue: string, options?: { trigger?: string; budgetMs?: number }): Promise<SyncResult>;
  syncAll(trigger: string, budgetMs?: number): Promise<SyncResult[]>;
  /** Applies a conditions report durably (Cache API), as a page's would; source defaults to 'app'. */
  reportConditions(report: ConditionsReport & { source?: 'browser' | 'app' }): Promise<{ conditions: Conditions; waitingFor: Record<string, WaitReason[]> }>;
  /** Why `queue` may not send under the last report ([] = it may). */
  waitingFor(queue: string): Promise<WaitReason[]>;
  status(queue?: string): Promise<Status>;
  pull(options?: { force?: boolean }): Promise<PullResult[]>;
  hasBackgroundSync(): boolean;
  /** Closes the engine for good (done by itself when a newer worker version activates). */
  retire(): Promise<void>;
}

export declare class BgsyncPlugin {
  constructor(worker: BgsyncWorker, options?: { queue?: string; priority?: Priority; entity?: (request: Request) => string | undefined });
  fetchDidFail(param: { request: Request }): Promise<void>;
}

export declare class Engine {
  static open(
    module: object,
    store: PageStore,
    options?: EngineOptions & { now?: () => number; queues?: QueueConfig[]; blobStore?: BlobStore | null; largeBodyBytes?: number },
  ): Promise<Engine>;
  /** Set when open quarantined a damaged store (onCorrupt 'quarantine'). */
  readonly recovery: Recovery | null;
  /** The size limits of a configured queue, as the engine applies them (maxItems, maxBytes: 0 = unbounded). */
  queueLimits(queue: string): Promise<{ maxItems: number; maxBytes: number; maxBodyBytes: number }>;
  enqueue(meta: object, body?: Uint8Array | string): Promise<{ id: number | null; key: string | null; coalesced?: true; cancelled?: number[] }>;
  /** early: resolve before the leases are durable (a replay's claim). */
  claim(queue: string, max?: number, options?: { early?: boolean }): Promise<ClaimedItem[]>;
  /** Leases item `id` if a claim could hand it out now (the head start's claim); null otherwise. */
  claimItem(queue: string, id: number): Promise<ClaimedItem | null>;
  outcome(report: { id: number; attempt: number; status: number; headers?: Record<string, string> }, body?: Uint8Array): Promise<object>;
  body(id: number): Uint8Array;
  status(queue?: string | null): { counts: Record<string, number>; nextWakeAt: number | null; queues: Record<string, object> };
  items(filter?: object): object[];
  close(): Promise<void>;
  [method: string]: unknown;
}

export declare class Replayer {
  constructor(options: {
    engine: Engine;
    fetch: typeof fetch;
    concurrency: number;
    requestTimeoutMs: number;
    credentials?: BgsyncWorkerOptions['credentials'];
    resolveConflict?: BgsyncWorkerOptions['resolveConflict'];
    clockMs?: () => number;
    /** The queue has a batch endpoint: one request carries many items. */
    batch?: boolean;
    /** Throws (a BgsyncError whose code is the reason) for a URL that must not be fetched; asked before every send. */
    checkUrl?: (url: string) => unknown;
    onOutcome?: (item: ClaimedItem, decision: object, status: number) => void;
  });
  run(queue: string, options: { deadlineMs: number }): Promise<{ attempted: number; stoppedByDeadline: boolean; states: Record<string, number> }>;
}

export declare function loadEngineModule(options?: { wasmUrl?: string | URL; wasmBinary?: Uint8Array; wasmModule?: WebAssembly.Module }): Promise<object>;
/** 'file' is Node only (a FileStore in `dir`). lock: false leaves the Web Lock to the caller. */
export declare function openStore(options?: {
  storage?: 'indexeddb' | 'opfs' | 'memory' | 'file' | PageStore;
  name?: string;
  dir?: string;
  lock?: false | { steal?: boolean; timeoutMs?: number };
}): Promise<PageStore>;
export declare class IndexedDbStore implements PageStore {
  constructor(options?: { name?: string; indexedDB?: IDBFactory; looseLimit?: number });
  load(): ReturnType<PageStore['load']>;
  write(changes: Parameters<PageStore['write']>[0]): Promise<void>;
  readAhead(): Promise<HeadStartTickets | null>;
  quarantine(): Promise<{ movedTo: string }>;
  close(): void;
  destroy(): Promise<void>;
}
export declare class OpfsStore implements PageStore {
  constructor(options?: { name?: string; getDirectory?: () => Promise<FileSystemDirectoryHandle>; compactMinBytes?: number; compactMaxSegments?: number });
  load(): ReturnType<PageStore['load']>;
  write(changes: Parameters<PageStore['write']>[0]): Promise<void>;
  quarantine(): Promise<{ movedTo: string }>;
  close(): Promise<void>;
  /** Removes the store's directory (tests, "start fresh"). */
  destroy(): Promise<void>;
}
export declare class BlobStore {
  /** backend: {put, get, delete, list, close?}; openBlobStore picks one. */
  constructor(backend: object);
  put(id: string, body: Blob | ArrayBuffer | ArrayBufferView): Promise<void>;
  get(id: string): Promise<Blob | Uint8Array | null>;
  delete(id: string): Promise<void>;
  list(): Promise<string[]>;
  close(): Promise<void>;
  /** Where the blobs are: a database name, a directory, or 'memory[:<tag>]'. */
  readonly location: string;
  /** The store of the same backend that quarantine(tag) moves blobs into. */
  sibling(tag: string): BlobStore;
  /** Moves blobs (all, or `ids`) into sibling(tag), each durable there before it is deleted here. */
  quarantine(tag: string, ids?: string[]): Promise<{ movedTo: string | null; moved: number; left: string[]; error?: unknown }>;
  /** The tag of a quarantine whose move did not finish, or null. */
  pendingQuarantine(): Promise<string | null>;
}
export declare function openBlobStore(options?: {
  storage?: 'indexeddb' | 'opfs' | 'memory' | 'file';
  name?: string;
  dir?: string;
  indexedDB?: IDBFactory;
  getDirectory?: () => Promise<FileSystemDirectoryHandle>;
}): BlobStore;
export declare class MemoryStore implements PageStore {
  load(): ReturnType<PageStore['load']>;
  write(changes: Parameters<PageStore['write']>[0]): Promise<void>;
  readAhead(): Promise<HeadStartTickets | null>;
  quarantine(): Promise<{ movedTo: string }>;
  failNext(error: unknown): void;
  close(): void;
}
