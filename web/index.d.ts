// Types of the page side of bgsync ('bgsync'). Must match web/SyncClient.js and web/protocol.js.

export declare const PROTOCOL_VERSION: number;
export declare function syncTag(queue: string): string;
/** The periodicsync tag of the worker's pulls. */
export declare const PULL_TAG: string;
export declare const MESSAGES: Readonly<Record<string, string>>;

export declare class BgsyncError extends Error {
  constructor(code: string, detail?: string, options?: { cause?: unknown });
  readonly name: 'BgsyncError';
  /** Stable kebab-case code: 'queue-full', 'origin-not-allowed', 'timeout', ... */
  readonly code: string;
  readonly detail: string;
  toJSON(): { name: string; code: string; message: string; detail: string };
  static fromJSON(obj: unknown): BgsyncError;
}

export type Priority = 'critical' | 'high' | 'normal' | 'low';
export type ItemState = 'pending' | 'inflight' | 'waiting' | 'done' | 'conflict' | 'dead' | 'auth';
export type Counts = Record<ItemState, number>;

export interface EnqueueRequest {
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
  /** 'server-wins' | 'client-wins' | 'merge' | 'manual' | 'custom', or {strategy, fields, default, timeField}. */
  conflictStrategy?: string | object;
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
}

export interface Status {
  queue: string | null;
  counts: Counts;
  state: 'idle' | 'scheduled' | 'running' | 'completed' | 'failed';
  nextAttemptAt: number | null;
  lastRun: RunSummary | null;
  queues: Record<string, Counts>;
  backgroundSync: boolean;
  now: number;
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
}

export interface SyncClientEventMap {
  progress: CustomEvent<{ queue: string; done: number; total: number; id: number; key: string; status: number; state: string }>;
  status: CustomEvent<Status>;
  completed: CustomEvent<{ queue: string; run: RunSummary }>;
  failed: CustomEvent<{ queue: string; run: RunSummary }>;
  conflict: CustomEvent<{ queue: string; id: number; key: string; url: string; method: string; status: number; reason: string | null }>;
  dead: CustomEvent<{ queue: string; id: number; key: string; url: string; method: string; status: number; reason: string | null }>;
  auth: CustomEvent<{ queue: string; id: number; key: string; url: string; method: string; status: number; reason: string | null }>;
  pulled: CustomEvent<{ pulls: { name: string; url: string; state: string; status?: number }[] }>;
}

export declare class SyncClient extends EventTarget {
  constructor(options?: SyncClientOptions);
  /** The worker's hello: {protocol, instanceId, queues, backgroundSync, batch, diagnostics}.
   *  batch: how many calls one message may carry (calls made in one task share a message). */
  info?: { protocol: number; instanceId: string; queues: string[]; backgroundSync: boolean; batch?: number };
  ready(): Promise<ServiceWorker>;
  /** Resolves once the item is durable in the worker's store. */
  enqueue(request: EnqueueRequest): Promise<{ id: number; key: string }>;
  status(queue?: string): Promise<Status>;
  syncNow(queue?: string, options?: { trigger?: 'page' | 'online' | 'visible' | 'timer' }): Promise<{ remaining: number }>;
  items(filter?: { queue?: string; state?: ItemState; limit?: number }): Promise<Item[]>;
  attempts(filter?: { id?: number; limit?: number }): Promise<object[]>;
  deadLetters(queue?: string): Promise<Item[]>;
  retryDead(id: number): Promise<unknown>;
  discardDead(id: number): Promise<unknown>;
  conflicts(queue?: string): Promise<unknown[]>;
  resolveConflict(id: number, resolution: { keep: 'local' | 'remote' } | { document: object; version?: string }): Promise<unknown>;
  releaseAuth(queue?: string): Promise<{ released: number } | null>;
  /** Periodic Background Sync for the worker's pulls; false where missing or refused. */
  registerPeriodicSync(options?: { minIntervalMs?: number }): Promise<boolean>;
  close(): void;
  addEventListener<K extends keyof SyncClientEventMap>(type: K, listener: (ev: SyncClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void;
}
