// Types of the page side of bgsync ('bgsync'). Must match web/SyncClient.js and web/protocol.js.

export declare const PROTOCOL_VERSION: number;
export declare function syncTag(queue: string): string;
/** The periodicsync tag of the worker's pulls. */
export declare const PULL_TAG: string;

/** Every code bgsync raises (the keys of MESSAGES in web/BgsyncError.js). */
export type BgsyncErrorCode =
  // From the engine (core/include/bgsync.h).
  | 'internal-error' | 'out-of-memory' | 'misuse' | 'invalid-json' | 'invalid-argument'
  | 'invalid-method' | 'invalid-url' | 'invalid-priority' | 'body-too-large' | 'queue-full'
  | 'unknown-queue' | 'not-found' | 'stale-outcome' | 'invalid-state' | 'storage-failed'
  | 'storage-corrupt' | 'batch-not-configured' | 'invalid-document'
  // Raised by the JavaScript glue.
  | 'storage-quota' | 'engine-closed' | 'storage-locked' | 'origin-not-allowed'
  | 'no-service-worker' | 'timeout' | 'bad-message' | 'protocol-mismatch' | 'unclonable-body';

export declare const MESSAGES: Readonly<Record<BgsyncErrorCode, string>>;

export declare class BgsyncError extends Error {
  constructor(code: BgsyncErrorCode, detail?: string, options?: { cause?: unknown });
  readonly name: 'BgsyncError';
  /** Stable kebab-case code: 'queue-full', 'origin-not-allowed', 'timeout', ... */
  readonly code: BgsyncErrorCode;
  readonly detail: string;
  toJSON(): BgsyncErrorJSON;
  static fromJSON(obj: unknown): BgsyncError;
}

/** A BgsyncError as it crosses postMessage (toJSON, fromJSON). */
export interface BgsyncErrorJSON {
  name: string;
  code: BgsyncErrorCode;
  message: string;
  detail: string;
}

export type Priority = 'critical' | 'high' | 'normal' | 'low';
export type ItemState = 'pending' | 'inflight' | 'waiting' | 'done' | 'conflict' | 'dead' | 'auth';
export type Counts = Record<ItemState, number>;

export type ConflictStrategyName = 'server-wins' | 'client-wins' | 'merge' | 'manual' | 'custom';
/** How the merge decides a field changed differently on both sides. */
export type FieldRule = 'prefer-local' | 'prefer-remote' | 'newer-wins' | 'unresolvable';

/** A queue's `conflict`, or an item's `conflictStrategy` object (laid over the queue's). */
export interface ConflictConfig {
  /** Default 'manual'. */
  strategy?: ConflictStrategyName;
  /** Rules by dotted path ('title', 'address.city'); a rule covers the keys below its path. */
  fields?: Record<string, FieldRule>;
  /** The rule of fields without one (default 'unresolvable'). */
  default?: FieldRule;
  /** The remote document's member with its edit time, for newer-wins (default 'updatedAt'). */
  timeField?: string;
}

/** What an enqueue says about an item besides the request itself (page and worker alike). */
export interface EnqueueFields {
  queue?: string;
  priority?: Priority;
  /** Items of one entity are delivered strictly in order. */
  entity?: string;
  /** The ETag the change was made from (sent as If-Match). */
  baseVersion?: string;
  /** The document the change was made from (three-way merge). */
  baseDocument?: object | string;
  /** When the local edit was made (ms), for the newer-wins merge rule. */
  editedAt?: number;
  /** A strategy name, or {strategy, fields, default, timeField} laid over the queue's `conflict`. */
  conflictStrategy?: ConflictStrategyName | ConflictConfig;
}

export interface EnqueueRequest extends EnqueueFields {
  /** Absolute or relative to the page. Only the app origin unless the worker allow-lists it. */
  url: string | URL;
  method?: string;
  headers?: Record<string, string> | Headers | [string, string][];
  /**
   * Plain objects and arrays are sent as JSON (content-type application/json unless set);
   * FormData, URLSearchParams and ReadableStream are encoded as fetch() would. Other objects
   * (Map, class instances) and values JSON cannot encode (BigInt, cycles) reject with
   * `unclonable-body`.
   */
  body?: string | ArrayBuffer | ArrayBufferView | Blob | FormData | URLSearchParams | ReadableStream | Record<string, unknown> | unknown[] | null;
}

export interface RunSummary {
  queue: string;
  trigger: string;
  startedAt: number;
  endedAt: number | null;
  attempted: number;
  states: Partial<Record<ItemState | 'unknown', number>>;
  remaining?: number;
  result: 'running' | 'completed' | 'failed';
  /** Set when the run failed with an error (not just items left to retry). */
  error?: BgsyncErrorJSON;
}

/** Why a queue waits under user constraints: one per constraint (sw/Conditions.js REASONS). */
export type WaitReason = 'unmetered-network' | 'save-data-off' | 'battery-not-low';

export type ConnectionType = 'bluetooth' | 'cellular' | 'ethernet' | 'mixed' | 'none' | 'other' | 'unknown' | 'wifi' | 'wimax';
export type EffectiveType = 'slow-2g' | '2g' | '3g' | '4g';

/**
 * What a page knows about the device. Every field optional; null forgets it (unknown, which
 * counts as allowed). `connectionType` sets `metered` too unless the report gives it:
 * cellular = metered, wifi/ethernet = not, any other type = unknown.
 */
export interface ConditionsReport {
  metered?: boolean | null;
  saveData?: boolean | null;
  /** level 0..1; low = not charging and under the queue's lowBatteryLevel (default 0.15). */
  battery?: { level: number; charging: boolean } | null;
  connectionType?: ConnectionType | null;
  effectiveType?: EffectiveType | null;
}

/** The conditions in force in the worker (the app's values over the browser's); null = unknown. */
export interface Conditions {
  metered: boolean | null;
  saveData: boolean | null;
  battery: { level: number; charging: boolean } | null;
  connectionType: ConnectionType | null;
  effectiveType: EffectiveType | null;
  /** When the newest report in force was made (engine time, ms); null if never. */
  reportedAt: number | null;
}

export interface Status {
  queue: string | null;
  counts: Counts;
  state: 'idle' | 'scheduled' | 'running' | 'completed' | 'failed';
  nextAttemptAt: number | null;
  lastRun: RunSummary | null;
  queues: Record<string, Counts>;
  backgroundSync: boolean;
  /** Why items of these queues are held back by user constraints now ([] when none is). */
  waitingFor: WaitReason[];
  /** The same per queue, only queues with items held. */
  waitingForByQueue: Record<string, WaitReason[]>;
  conditions: Conditions;
  /** Set when this worker's open quarantined a damaged store (engineOptions.onCorrupt). */
  recovery: Recovery | null;
  now: number;
}

/** A damaged store set aside at open: what was wrong, and where the damaged copy went. */
export interface Recovery {
  code: 'storage-corrupt';
  detail: string;
  movedTo: string;
  at: number;
  /** With a blob store: where the large bodies went with the damaged copy (null: there were none). */
  blobsMovedTo?: string | null;
  blobsMoved?: number;
  /** Only after a move that failed part way: bodies still in the live store, and why. */
  blobsLeft?: number | null;
  blobsError?: string;
}

export interface Item {
  id: number;
  key: string;
  queue: string;
  method: string;
  url: string;
  state: ItemState;
  priority: Priority;
  entity: string | null;
  attempts: number;
  dueAt: number | null;
  createdAt: number;
  updatedAt: number;
  lastStatus: number | null;
  /** Why the item is where it is: 'max-attempts', 'origin-not-allowed', 'server-wins', ...; null if nothing to say. */
  reason: string | null;
  /** Set when the body lives in the blob store (over largeBodyBytes, or a Blob). */
  bodyRef: { id: string; size: number } | null;
}

/** One entry of the attempt log. */
export interface Attempt {
  seq: number;
  /** The item's id. */
  id: number;
  attempt: number;
  /** When the outcome was reported (engine time, ms). */
  at: number;
  /** The HTTP status; 0 = network error or timeout. */
  status: number;
  /** The item's state after it. */
  state: ItemState;
  /** The backoff chosen; null unless waiting. */
  delayMs: number | null;
}

/** A record of the conflicts inbox (README "Conflicts"). */
export interface Conflict {
  id: number;
  itemId: number;
  queue: string;
  entity: string | null;
  method: string;
  url: string;
  /** The 409 or 412 that raised it. */
  status: number;
  strategy: ConflictStrategyName;
  state: 'open' | 'resolved';
  /** No usable remote document yet: keep 'remote', or keep 'local' with a version. */
  needsRemote: boolean;
  custom: boolean;
  remoteDeleted: boolean;
  base: Record<string, unknown> | null;
  local: Record<string, unknown> | null;
  remote: Record<string, unknown> | null;
  baseVersion: string | null;
  remoteVersion: string | null;
  /** The paths the merge could not decide. */
  fields: string[] | null;
  /** The merge's partial result (the remote value at each undecided path). */
  merged: Record<string, unknown> | null;
  resolution: 'server-wins' | 'client-wins' | 'merged' | 'keep-local' | 'keep-remote' | 'document' | null;
  reason: string | null;
  itemState: ItemState;
  createdAt: number;
  resolvedAt: number | null;
}

/**
 * How a conflict is settled: drop the local change, send it again, or send this document
 * instead. `version`: the remote version to send against when the server's is not known.
 */
export type ConflictResolution =
  | { keep: 'local' | 'remote'; version?: string }
  | { document: object; version?: string };

/** The detail of the conflict, dead and auth events (id: the item's). */
export interface ItemEventDetail {
  queue: string;
  id: number;
  key: string;
  url: string;
  method: string;
  status: number;
  reason: string | null;
}

/** The detail of the completed and failed events. */
export interface RunEventDetail {
  queue: string;
  run: RunSummary;
}

/** One pull of a periodic sync (BgsyncWorker `pulls`). */
export interface PullResult {
  name: string;
  url: string;
  state: 'fresh' | 'not-modified' | 'updated' | 'failed';
  status?: number;
}

export interface SyncClientOptions {
  serviceWorker?: ServiceWorkerContainer;
  /** How long one request to the worker may take. */
  timeoutMs?: number;
  /** How long ready() waits for an active worker. */
  readyTimeoutMs?: number;
  /** Without Background Sync: how often a visible page asks for a replay. */
  fallbackIntervalMs?: number;
  /** What relative URLs resolve against (default: the page). */
  baseUrl?: string;
  /**
   * Report navigator.connection (type, effectiveType, saveData) and navigator.getBattery()
   * to the worker on connect and at every change (default true).
   */
  watchConditions?: boolean;
}

export interface SyncClientEventMap {
  /** state 'unknown': the outcome could not be applied (e.g. the lease had passed to another run). */
  progress: CustomEvent<{ queue: string; done: number; total: number; id: number; key: string; status: number; state: ItemState | 'unknown' }>;
  status: CustomEvent<Status>;
  completed: CustomEvent<RunEventDetail>;
  failed: CustomEvent<RunEventDetail>;
  conflict: CustomEvent<ItemEventDetail>;
  dead: CustomEvent<ItemEventDetail>;
  auth: CustomEvent<ItemEventDetail>;
  pulled: CustomEvent<{ pulls: PullResult[] }>;
  /** A replay found the queue's constraints unmet: sent when a queue starts waiting (or for other reasons). */
  deferred: CustomEvent<{ queue: string; waitingFor: WaitReason[]; remaining: number; trigger: string }>;
  /** The worker found its store damaged and, as configured, started a fresh one. */
  recovered: CustomEvent<Recovery>;
}

export declare class SyncClient extends EventTarget {
  constructor(options?: SyncClientOptions);
  /** The worker's hello: {protocol, instanceId, queues, backgroundSync, batch, diagnostics}.
   *  batch: how many calls one message may carry (calls made in one task share a message). */
  info?: { protocol: number; instanceId: string; queues: string[]; backgroundSync: boolean; batch?: number; conditions?: boolean; diagnostics?: { ignoredMessages: number; lastIgnoredReason: string | null } };
  ready(): Promise<ServiceWorker>;
  /**
   * Resolves once the item is durable in the worker's store. id and key are null when a
   * DELETE cancelled its entity's never-sent changes in a `coalesce` queue (nothing stored).
   */
  enqueue(request: EnqueueRequest): Promise<{ id: number; key: string } | { id: null; key: null }>;
  status(queue?: string): Promise<Status>;
  /** waitingFor: present when user constraints held a queue back. */
  syncNow(queue?: string, options?: { trigger?: 'page' | 'online' | 'visible' | 'timer' }): Promise<{ remaining: number; waitingFor?: WaitReason[] }>;
  /**
   * Reports what the app knows (wins over the browser's readings); resolves once the worker
   * stored it. A queue it unblocks is replayed at once. Bad fields: invalid-argument.
   */
  reportConditions(report: ConditionsReport): Promise<{ conditions: Conditions; waitingFor: Record<string, WaitReason[]> }>;
  items(filter?: { queue?: string; state?: ItemState; limit?: number }): Promise<Item[]>;
  /** The attempt log, oldest first (default: the newest 100). */
  attempts(filter?: { id?: number; limit?: number }): Promise<Attempt[]>;
  deadLetters(queue?: string): Promise<Item[]>;
  /** Resolves once the dead letter is pending again (same id and key). */
  retryDead(id: number): Promise<null>;
  discardDead(id: number): Promise<null>;
  /** The inbox: open conflicts and the newest resolved ones, oldest first. */
  conflicts(queue?: string): Promise<Conflict[]>;
  /** id: the conflict's (Conflict.id). Resolves with the record once durable; already resolved: invalid-state. */
  resolveConflict(id: number, resolution: ConflictResolution): Promise<Conflict>;
  releaseAuth(queue?: string): Promise<{ released: number } | null>;
  /** Periodic Background Sync for the worker's pulls; false where missing or refused. */
  registerPeriodicSync(options?: { minIntervalMs?: number }): Promise<boolean>;
  close(): void;
  addEventListener<K extends keyof SyncClientEventMap>(type: K, listener: (ev: SyncClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}
