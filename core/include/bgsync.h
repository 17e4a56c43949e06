/*
 * bgsync.h -- the public interface of the bgsync engine.
 *
 * The engine is a durable request queue on SQLite: it decides what to send next,
 * when to retry and what an outcome means; it never performs I/O besides SQLite and
 * never reads a clock (every time is a millisecond argument, `now`).
 *
 * Storage: the database lives in a bgs_image (its pages in memory). After each call
 * the host takes the pages that changed (bgs_changes_take) and writes them durably
 * (IndexedDB, OPFS, a file). Only once that write succeeded may the host acknowledge
 * the calls it covers. If it fails, the host closes the engine and reopens it from
 * its last durable pages.
 *
 * Conventions:
 *  - every call that can fail returns int, BGS_OK == 0; bgs_errmsg() gives detail;
 *  - structured arguments and results are JSON text (UTF-8, NUL-terminated);
 *  - whatever the engine allocates for the caller (char **pzOut, unsigned char **)
 *    is released with bgs_free();
 *  - inputs are copied before a call returns: the caller keeps ownership of them.
 * Nothing here is thread-safe; one engine is used by one thread.
 */
#ifndef BGSYNC_H
#define BGSYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Milliseconds since the Unix epoch, always supplied by the caller. */
typedef int64_t bgs_time;

/*
 * Result codes: XX(NAME, value, "kebab-code", "message").
 * New codes go last; values are never renumbered. The kebab codes are the `code`
 * of the JavaScript BgsyncError (web/BgsyncError.js has a message per code: must match).
 */
#define BGS_ERRNO_MAP(XX)                                                              \
  XX(OK, 0, "ok", "no error")                                                          \
  XX(ERROR, 1, "internal-error", "internal error in the engine or SQLite")             \
  XX(NOMEM, 2, "out-of-memory", "out of memory")                                       \
  XX(MISUSE, 3, "misuse", "a required handle or argument is missing")                  \
  XX(INVALID_JSON, 4, "invalid-json", "an argument is not the JSON it must be")        \
  XX(INVALID_ARGUMENT, 5, "invalid-argument", "an argument has a wrong type or value") \
  XX(INVALID_METHOD, 6, "invalid-method", "the HTTP method is not allowed")            \
  XX(INVALID_URL, 7, "invalid-url", "the URL is not an absolute http(s) URL")          \
  XX(INVALID_PRIORITY, 8, "invalid-priority", "unknown priority")                      \
  XX(BODY_TOO_LARGE, 9, "body-too-large", "the body is larger than the queue allows")  \
  XX(QUEUE_FULL, 10, "queue-full", "the queue is at its item or byte limit")           \
  XX(UNKNOWN_QUEUE, 11, "unknown-queue", "no queue of that name is configured")        \
  XX(NOT_FOUND, 12, "not-found", "no item with that id")                               \
  XX(STALE, 13, "stale-outcome", "the outcome is for an attempt that no longer holds") \
  XX(INVALID_STATE, 14, "invalid-state", "the item is not in a state that allows it")  \
  XX(STORAGE, 15, "storage-failed", "the storage layer failed")                        \
  XX(CORRUPT, 16, "storage-corrupt", "the stored database is damaged")             \
  XX(NO_BATCH, 17, "batch-not-configured", "the queue has no batch endpoint")          \
  XX(INVALID_DOCUMENT, 18, "invalid-document",                                         \
     "a document is not a JSON object within the size and depth limits")

typedef enum {
#define BGS__ENUM(name, value, code, msg) BGS_##name = value,
  BGS_ERRNO_MAP(BGS__ENUM)
#undef BGS__ENUM
} bgs_result;

/* A fixed message for a result code ("unknown result code" for others). */
const char *bgs_errstr(int rc);
/* The stable kebab-case code of a result ("ok", "queue-full"); NULL past the last. */
const char *bgs_errname(int rc);

/* ---------------------------------------------------------------------------------
 * Images: a database file held in memory as fixed-size chunks.
 * ------------------------------------------------------------------------------- */

/* Every chunk is this large; SQLite's page size is set to the same value. */
#define BGS_CHUNK_SIZE 4096

typedef struct bgs_image bgs_image;

/* A new, empty image (a new database). */
int bgs_image_new(bgs_image **ppImg /* OUT */);

/*
 * Loads chunk iChunk of a stored image before bgs_open. pData holds nData bytes
 * (BGS_CHUNK_SIZE, or fewer for a short last chunk); uCrc is the checksum that
 * bgs_changes_take gave with it. Returns BGS_CORRUPT when they disagree.
 */
int bgs_image_load(bgs_image *pImg, uint32_t iChunk, const void *pData, size_t nData,
                   uint32_t uCrc);

/* Sets the file size of a loaded image (from the stored changes). */
int bgs_image_set_size(bgs_image *pImg, int64_t nSize);

/* Frees an image that was not handed to bgs_open. NULL is a no-op. */
void bgs_image_free(bgs_image *pImg);

/* The checksum stored with each chunk (CRC-32, IEEE). */
uint32_t bgs_crc32(const void *pData, size_t nData);

/* ---------------------------------------------------------------------------------
 * Engine
 * ------------------------------------------------------------------------------- */

typedef struct bgs_engine bgs_engine;

typedef struct bgs_config {
  uint64_t uSeed;          /* seeds jitter; same seed, same delays */
  int64_t nLeaseMs;        /* how long a claim holds before the item is claimable again; 0 = 60 000 */
  int64_t nMaxAttemptLog;  /* attempts kept in the log; 0 = 1000 */
  const char *zInstallId;  /* random id of this store, prefix of idempotency keys; used
                              only when the image is new (NULL = "bgs") */
} bgs_config;

/*
 * Opens an engine over pImg. The image moves into the engine whatever the result:
 * the caller must not use or free it afterwards. A new image gets the schema;
 * an existing one is verified and migrated. On failure *ppEng is NULL.
 * Results: BGS_OK, BGS_CORRUPT, BGS_NOMEM, BGS_ERROR.
 */
int bgs_open(bgs_image *pImg, const bgs_config *pCfg, bgs_time now, bgs_engine **ppEng /* OUT */);

/* Closes the engine and frees its image. NULL is a no-op. */
int bgs_close(bgs_engine *pEng);

/* Detail of the last failed call on pEng; owned by the engine, valid until its next call. */
const char *bgs_errmsg(bgs_engine *pEng);

/* Frees what the engine allocated for the caller. NULL is a no-op. */
void bgs_free(void *p);

/*
 * The changes since the previous take, serialized for the host (little-endian):
 *   u32 chunk size, u32 count n, f64 file size in bytes,
 *   n x { u32 chunk index, u32 crc32 }, then n x chunk bytes (BGS_CHUNK_SIZE each,
 *   zero-padded past the end of the file).
 * Chunks at or past ceil(size / chunk size) no longer exist. n may be 0 (nothing to
 * write). The buffer is released with bgs_free.
 */
int bgs_changes_take(bgs_engine *pEng, unsigned char **ppBuf /* OUT */, size_t *pnBuf /* OUT */);

/* One changed chunk, in the engine's own memory (bgs_changes_view). */
typedef struct bgs_chunk_view {
  uint32_t iChunk;            /* its bytes are the file's from iChunk * BGS_CHUNK_SIZE */
  uint32_t uCrc;              /* bgs_crc32 of its BGS_CHUNK_SIZE bytes */
  const unsigned char *pData; /* BGS_CHUNK_SIZE bytes, zero past the end of the file */
} bgs_chunk_view;

/*
 * The same changes as bgs_changes_take, without copying them: *paView lists *pnView
 * chunks (in the order bgs_changes_take gives them) and *pnSize is the file size. They
 * count as taken. The list and the bytes belong to the engine and hold until the next
 * call on it (any call may change or free them): the host writes or copies them first.
 */
int bgs_changes_view(bgs_engine *pEng, const bgs_chunk_view **paView /* OUT */,
                     uint32_t *pnView /* OUT */, int64_t *pnSize /* OUT */);

/*
 * Declares or updates a queue. zJson:
 *   {"name": "outbox",                       (required, 1..64 chars)
 *    "backoff": {"kind": "exponential"|"linear", "initialMs": 30000, "factor": 2,
 *                "maxMs": 3600000, "jitter": "none"|"full"|"equal"},
 *    "maxAttempts": 0 (unbounded), "maxAgeMs": 0 (unbounded),
 *    "maxItems": 0, "maxBytes": 0 (0 = unbounded), "maxBodyBytes": 16777216,
 *    "coalesce": false,                       (merge changes per entity, see bgs_enqueue)
 *    "batch": {"url": "https://...", "maxItems": 1..1000} | null,  (see bgs_claim_batch)
 *    "keepDone": 100}                         (delivered items kept, 0..1000000000)
 * Missing fields keep their defaults (or previous value); "batch": null removes the
 * batch endpoint.
 * History: delivered ("done") items are kept only as history, the newest keepDone per
 * queue (0 = none). Whenever an item of the queue becomes done (a 2xx, a batch result,
 * a conflict resolved server-wins or keep-remote), its oldest done items beyond that
 * number are deleted, so the store does not grow with every delivery; a lower keepDone
 * takes effect at the queue's next delivery. Never deleted this way: dead letters,
 * items in conflict, auth, pending, waiting or in flight, and done items that a
 * conflict record (bgs_conflicts) still refers to. Ids and idempotency keys of deleted
 * items are never given again; bgs_items, bgs_status and bgs_body no longer know them,
 * and a late outcome for one is BGS_NOT_FOUND. The attempt log keeps its entries.
 * Backoff: the delay after the n-th failed attempt is initialMs * factor^(n-1)
 * (exponential) or initialMs * n (linear), capped at maxMs; jitter "full" draws it
 * uniformly from [0, d], "equal" from [d/2, d], from a hash of (seed, item, n).
 * A Retry-After (delta-seconds or IMF-fixdate) longer than that delay is honoured, up
 * to maxMs. An item dies ("max-attempts") when a retryable failure ends its
 * maxAttempts-th attempt, and ("expired") when its next try would be later than
 * createdAt + maxAgeMs -- both when an outcome is reported and when a claim meets it.
 * Results: BGS_OK, BGS_INVALID_JSON, BGS_INVALID_ARGUMENT, BGS_INVALID_URL.
 */
int bgs_queue_configure(bgs_engine *pEng, const char *zJson, bgs_time now);

/*
 * The size limits of queue zQueue as its configuration sets them now:
 *   {"maxItems": n, "maxBytes": n, "maxBodyBytes": n}   (maxItems, maxBytes: 0 = unbounded)
 * The glue reads them to refuse an oversized body before it writes the body anywhere
 * (a large body goes to the blob store first). Results: BGS_OK, BGS_UNKNOWN_QUEUE.
 */
int bgs_queue_limits(bgs_engine *pEng, const char *zQueue, char **pzOut /* OUT */);

/*
 * Enqueues one request. zJson:
 *   {"queue": "outbox", "method": "POST", "url": "https://...",
 *    "headers": {"content-type": "application/json"},   (optional, string values)
 *    "priority": "critical"|"high"|"normal"|"low",      (optional, normal)
 *    "entity": "note:42"}                                 (optional)
 * pBody/nBody is the body (may be NULL/0). On success *pzOut is
 *   {"id": 7, "key": "<idempotency key>"}.
 *
 * Entities: items that name the same entity are sent strictly in enqueue order, one
 * at a time: only the oldest unfinished one (pending, waiting, in flight, conflict or
 * auth) is claimable. Done and dead items no longer block their entity; an entity
 * blocked by a failing, conflicting or unauthorized item blocks nothing else.
 *
 * Coalescing (queues with "coalesce": true, items with an entity). The engine looks at
 * the entity's unfinished items; an item is "fresh" when it is in the same queue,
 * pending and has never been attempted (attempts = 0 and no outcome ever reported, so
 * it never was in flight; a dead letter sent again is not fresh).
 * Only fresh items are rewritten; the rewritten item keeps its id, key, createdAt and
 * place in line, takes the higher of the two priorities, and *pzOut is
 *   {"id": <the merged item>, "key": ..., "coalesced": true}.
 *  - PATCH onto a fresh PATCH of the same URL, both bodies JSON objects: one PATCH whose
 *    body is the composition of the two JSON merge patches (RFC 7396: applying it
 *    equals applying both in order, nulls still delete) and whose headers are the
 *    first's with the second's over them.
 *  - PATCH onto a fresh POST (any URL), both bodies JSON objects: the POST, its body
 *    with the patch applied (json_patch).
 *  - PUT onto a fresh PUT or PATCH of the same URL: the PUT (method, URL, headers,
 *    body) replaces it.
 *  - PUT onto a fresh POST (any URL): the POST with the PUT's body.
 *  - DELETE when every unfinished item of the entity is fresh and the oldest is a POST:
 *    the create never reached the server, so all of them are removed and nothing is
 *    stored; *pzOut is {"id": null, "key": null, "cancelled": [ids removed]}.
 * Anything else (a POST, a tail that is not fresh, different URLs, bodies that are not
 * JSON objects, a merge that would break maxBodyBytes or maxBytes) is appended as a
 * new item. Limits (maxItems) apply only to a change that is appended.
 * External bodies: {"bodyRef": {"id": "<1..128 of A-Z a-z 0-9 . _ ->", "size": N}} with
 * no body (pBody NULL, nBody 0) says the host keeps the bytes in its own blob store,
 * written before this call; the reference commits with the item (items.extra), N counts
 * as the body size for maxBodyBytes/maxBytes, claim and bgs_items return "bodyRef",
 * bgs_body gives no bytes, and such items never coalesce. A body and a bodyRef together
 * are BGS_INVALID_ARGUMENT.
 * Results: BGS_OK, BGS_INVALID_JSON, BGS_INVALID_ARGUMENT, BGS_INVALID_METHOD,
 * BGS_INVALID_URL, BGS_INVALID_PRIORITY, BGS_UNKNOWN_QUEUE, BGS_BODY_TOO_LARGE,
 * BGS_QUEUE_FULL. On failure nothing is stored.
 */
int bgs_enqueue(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                bgs_time now, char **pzOut /* OUT */);

/*
 * Leases up to nMax ready items of zQueue: due items by priority (critical, high,
 * normal, low) then FIFO, only the head of each entity, items whose lease expired
 * included (with the same key). An item older than the queue's maxAgeMs is not handed
 * out: it becomes a dead letter with reason "expired" and the next one is taken. Each
 * claimed item counts an attempt; "attempt" is the lease's token for bgs_outcome.
 * *pzOut is a JSON array of
 *   {"id", "key", "queue", "method", "url", "headers", "priority", "entity",
 *    "attempt", "bodySize", "leaseUntil", "baseVersion", "bodyRef"}
 * ("bodyRef" is null unless the item's body is external, see bgs_enqueue).
 * Results: BGS_OK, BGS_INVALID_ARGUMENT (nMax not in 1..10000), BGS_UNKNOWN_QUEUE.
 */
int bgs_claim(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now,
              char **pzOut /* OUT */);

/*
 * Leases item id of zQueue if bgs_claim could hand it out now (a ready entity head, not
 * expired), whatever comes before it in claim order; *pzOut is a JSON array of that one
 * item as bgs_claim gives it, or [] when it is not claimable. The head start's second
 * half (see bgs_ahead). Results: BGS_OK, BGS_INVALID_ARGUMENT (id < 1), BGS_UNKNOWN_QUEUE.
 */
int bgs_claim_item(bgs_engine *pEng, const char *zQueue, int64_t id, bgs_time now,
                   char **pzOut /* OUT */);

/*
 * What the next bgs_claim of zQueue would hand out first, without leasing anything, and
 * until when that stays true while nothing else changes the engine (ahead.c):
 *   {"item": {as bgs_claim gives it; "attempt" is the attempts made so far,
 *             "leaseUntil" null} | null,
 *    "validUntil": ms (the first moment it may no longer hold) | null (no limit)}
 * "item" is null when nothing is ready. Results: BGS_OK, BGS_UNKNOWN_QUEUE.
 */
int bgs_ahead(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut /* OUT */);

/* A copy of item id's body; *ppBody is NULL and *pnBody 0 for an empty body. */
int bgs_body(bgs_engine *pEng, int64_t id, unsigned char **ppBody /* OUT */,
             size_t *pnBody /* OUT */);

/*
 * Reports how an attempt ended. zJson:
 *   {"id": 7, "attempt": 1, "status": 503,       (status 0 = network error / timeout)
 *    "headers": {"retry-after": "120"},         (optional)
 *    "refused": "origin-not-allowed"}          (optional: the glue did not send it)
 * pBody/nBody: the response body when relevant (may be NULL/0).
 * *pzOut describes the decision: {"id", "state", "delayMs", "dueAt", "reason"}:
 *   2xx -> "done"; 0, 408, 425, 429, 5xx -> "waiting" (reason "retry"), or "dead" with
 *   reason "max-attempts" / "expired"; 409, 412 -> "conflict"; 401 -> "auth" (reason
 *   "auth-required": waits for bgs_auth_release, never dies of it); any other status
 *   -> "dead" (reason "rejected", or "unexpected-status" below 400). With "refused" (1 to
 *   40 characters a-z, 0-9, -) the request was never sent: "dead" with that reason,
 *   whatever the status; the status is logged as given.
 * A 2xx for an earlier attempt of the item still counts (the request was delivered).
 * Every accepted outcome is appended to the attempt log (bgs_attempts).
 * Results: BGS_OK, BGS_NOT_FOUND (no such item, or a done item no longer kept, see
 * keepDone in bgs_queue_configure), BGS_STALE (the attempt is not the one in flight;
 * nothing changes), BGS_INVALID_JSON, BGS_INVALID_ARGUMENT.
 */
int bgs_outcome(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                bgs_time now, char **pzOut /* OUT */);

/*
 * Counts and scheduling facts. zQueue NULL = all queues. *pzOut:
 *   {"counts": {"pending", "inflight", "waiting", "done", "conflict", "dead", "auth"},
 *    "nextWakeAt": ms or null, "queues": {"name": {counts...}}}
 * "done" counts the delivered items still kept (keepDone, bgs_queue_configure).
 */
int bgs_status(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut /* OUT */);

/*
 * Items for inspection, newest last. zJson (optional): {"queue", "state", "limit"}.
 * *pzOut is a JSON array of {"id","key","queue","method","url","state","priority",
 * "entity","attempts","dueAt","createdAt","updatedAt","lastStatus","reason"}.
 * Dead letters are {"state": "dead"}.
 */
int bgs_items(bgs_engine *pEng, const char *zJson, char **pzOut /* OUT */);

/*
 * The attempt log: one entry per accepted outcome, the newest nMaxAttemptLog kept
 * (bgs_config). zJson (optional, NULL = {}): {"id": item id, "limit": 1..100000
 * (default 100)}. *pzOut is a JSON array, oldest first, of the newest entries:
 *   {"seq", "id", "attempt", "at" (ms), "status" (0 = network error), "state" (the
 *    decision), "delayMs" (the backoff chosen, null unless waiting)}.
 * Results: BGS_OK, BGS_INVALID_JSON, BGS_INVALID_ARGUMENT.
 */
int bgs_attempts(bgs_engine *pEng, const char *zJson, char **pzOut /* OUT */);

/*
 * Sends dead letter id again: back to pending with its attempt count at 0, the same
 * id and idempotency key. It rejoins its entity: claimable at once when the entity
 * has nothing unfinished, otherwise after the entity's current head (a head is never
 * displaced, it may be in flight). Results: BGS_OK, BGS_NOT_FOUND, BGS_INVALID_STATE
 * (the item is not dead).
 */
int bgs_dead_retry(bgs_engine *pEng, int64_t id, bgs_time now);

/* Removes dead letter id for good. Results: BGS_OK, BGS_NOT_FOUND, BGS_INVALID_STATE. */
int bgs_dead_discard(bgs_engine *pEng, int64_t id, bgs_time now);

/*
 * Fresh credentials arrived: every item waiting for them ("auth") in zQueue (NULL =
 * all queues) becomes pending, claimable at once, attempts kept. *pzOut (may be NULL)
 * gets {"released": n}. Results: BGS_OK, BGS_UNKNOWN_QUEUE.
 */
int bgs_auth_release(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut /* OUT */);

/*
 * Batching (queues with "batch": {"url", "maxItems"}). Claims up to maxItems ready
 * items exactly as bgs_claim does (order, entity heads, leases, attempts, expiry) and
 * builds one request for the batch endpoint. *pzOut:
 *   {"method": "POST", "url": <batch url>, "headers": {"content-type": "application/json"},
 *    "items": [<the claimed items, as bgs_claim gives them>]}
 * The request body, *ppBody (*pnBody bytes; NULL/0 when no item was ready), is UTF-8 JSON:
 *   {"items": [{"key": <idempotency key>, "method", "url", "headers": {...},
 *               "body": "<text>"        when the body is UTF-8 without NUL bytes,
 *               "bodyBase64": "<...>"   otherwise (RFC 4648, padded);
 *               neither when the body is empty}]}
 * Results: BGS_OK, BGS_UNKNOWN_QUEUE, BGS_NO_BATCH.
 */
int bgs_claim_batch(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut /* OUT */,
                    unsigned char **ppBody /* OUT */, size_t *pnBody /* OUT */);

/*
 * Reports how a batch request ended. zJson:
 *   {"items": [{"id", "attempt"}, ...]   (from bgs_claim_batch's items, 1..1000)
 *    "status": 200,                      (the batch response's status; 0 = network error)
 *    "headers": {"retry-after": "30"}}   (optional)
 * pBody/nBody: the response body. A 2xx response is expected to be
 *   {"results": [{"key": <idempotency key>, "status": 201,
 *                 "headers": {...} (optional), "body": "<text>" (optional)}]}
 * and each item gets its own result's outcome (the rules of bgs_outcome). An item with
 * no result (or a result whose status is not an integer 0..999) is a failed attempt
 * ("missing-from-batch", "bad-batch-result"). When the batch fails as a whole -- a
 * non-2xx status, a network error, a 2xx whose body is not that JSON -- every item has a
 * failed attempt (reason "batch-failed" / "bad-batch-response", Retry-After honoured),
 * except for 401, which parks every item in "auth". *pzOut:
 *   {"batch": "ok"|"failed"|"bad-response",
 *    "results": [<bgs_outcome's decision per item>, or {"id", "error": "stale-outcome"}]}
 * Results: BGS_OK (also for a failed batch), BGS_INVALID_JSON, BGS_INVALID_ARGUMENT.
 */
int bgs_batch_outcome(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                      bgs_time now, char **pzOut /* OUT */);

/* ---------------------------------------------------------------------------------
 * Conflicts (conflict.c, merge.c)
 *
 * Reference conflict protocol (what the glue and a server speak):
 *  - An item edited from a known server version carries it: enqueue's "baseVersion"
 *    (the ETag the app read, 1..1024 bytes), optionally "baseDocument" (the JSON object
 *    it was edited from; needed for "merge"), "editedAt" (ms; for the newer-wins rule)
 *    and "conflictStrategy" (see below). The claim returns "baseVersion" (or null); the
 *    glue sends it verbatim as `If-Match: <baseVersion>`.
 *  - The server answers a stale If-Match with 412 (or a semantic conflict with 409),
 *    and the body of that response is the CURRENT document as JSON, its version in the
 *    `ETag` header. The glue reports it like any outcome: bgs_outcome with
 *    {"id", "attempt", "status": 412, "headers": {"etag": "\"v7\""}} and the body bytes.
 *    The decision then carries "conflict": {"id", "strategy", "state", "needsRemote",
 *    "custom", "resolution", "reason", "fields"}, and "state" is the item's new state
 *    (done, pending or conflict).
 *  - When the response has no usable document (no body, not a JSON object, past the
 *    limits below, or no ETag), the conflict is parked with "needsRemote": true (except
 *    server-wins, which needs nothing); the glue then GETs the item's URL and hands in
 *    the body and ETag with bgs_conflict_remote (NULL, NULL after a 404/410: gone).
 *  - A re-send against a new version (client-wins, a successful merge, a resolution
 *    that keeps the local side or gives a document) is a NEW request: the item goes back
 *    to pending with baseVersion = the remote version (so If-Match follows; an item
 *    header if-match is rewritten too) and a new idempotency key "<key>.r<round>" that
 *    stays the same on its own retries. A server that replays the stored response of a
 *    known key would otherwise answer the old 412 forever. A merged or given document
 *    replaces the body; a PATCH then becomes a PUT of the whole document.
 *  - After a 2xx whose response carries an ETag, later unfinished items of the same
 *    entity that carried the same baseVersion now carry that ETag (their edits build on
 *    the delivered one, so they must not conflict with it).
 *
 * Strategies, per queue (bgs_queue_configure "conflict", replaces the previous one) and
 * per item (enqueue "conflictStrategy": a name, or an object patched over the queue's):
 *   {"strategy": "server-wins"|"client-wins"|"merge"|"manual"|"custom",  (manual)
 *    "fields": {"title": "prefer-local"|"prefer-remote"|"newer-wins"|"unresolvable",
 *               "address.city": ...},    (dotted paths; a rule covers the fields below)
 *    "default": "unresolvable",          (the rule of fields without one)
 *    "timeField": "updatedAt"}   (the remote document's member with its edit time: ms
 *                                 since the epoch or an ISO-8601 date, for newer-wins:
 *                                 local editedAt later -> local, tie -> remote, either
 *                                 time unknown -> unresolvable)
 *   server-wins  item done, reason "server-wins" (body kept), conflict resolved;
 *   client-wins  re-sent against the remote version (needs only the ETag);
 *   merge        three-way merge of baseDocument, the local document (the body; for a
 *                PATCH the body applied as a JSON merge patch to baseDocument) and the
 *                remote document; re-sent when every field was decided, else parked
 *                with the unresolvable "fields" and the partial "merged" document;
 *   manual       parked; custom: parked with "custom": true for a resolver in the glue,
 *                which answers through bgs_conflict_resolve.
 * Every conflict is a row in the inbox (bgs_conflicts), also those resolved at once;
 * open ones are kept until resolved, of the resolved ones the newest 1000.
 * A parked item stays in state conflict and blocks its entity until it is resolved.
 * Re-sends per item are bounded (16 rounds); past that the conflict is parked.
 * ------------------------------------------------------------------------------- */

/* Documents larger or nested deeper than this are BGS_INVALID_DOCUMENT. */
#define BGS_MAX_DOCUMENT_BYTES (1024 * 1024)
#define BGS_MAX_DOCUMENT_DEPTH 64

/*
 * Conflicts for inspection, oldest first. zJson (optional): {"state": "open"|"resolved"|
 * "all" (default), "queue", "entity", "itemId", "limit" (1000, the newest)}. *pzOut is a
 * JSON array of {"id", "itemId", "queue", "entity", "method", "url", "status",
 * "strategy", "state": "open"|"resolved", "needsRemote", "custom", "remoteDeleted",
 * "base", "local", "remote" (documents or null), "baseVersion", "remoteVersion",
 * "fields" (unresolvable paths), "merged", "resolution" ("server-wins", "client-wins",
 * "merged", "keep-local", "keep-remote", "document" or null), "reason", "itemState",
 * "createdAt", "resolvedAt"}. Results: BGS_OK, BGS_INVALID_JSON, BGS_INVALID_ARGUMENT.
 */
int bgs_conflicts(bgs_engine *pEng, const char *zJson, char **pzOut /* OUT */);

/*
 * Hands in the current remote document of open conflict id (after needsRemote): zDoc is
 * the JSON object, zVersion its ETag (required with a document). zDoc NULL means the
 * resource is gone (404/410). The conflict's strategy then runs again. *pzOut is the
 * conflict as bgs_conflicts lists it. Results: BGS_OK, BGS_NOT_FOUND, BGS_INVALID_STATE
 * (not open), BGS_INVALID_DOCUMENT, BGS_INVALID_ARGUMENT; on failure nothing changes.
 */
int bgs_conflict_remote(bgs_engine *pEng, int64_t id, const char *zDoc, const char *zVersion,
                        bgs_time now, char **pzOut /* OUT */);

/*
 * Resolves open conflict id. zJson:
 *   {"keep": "remote"}       drop the local change (item done, reason "keep-remote");
 *   {"keep": "local"}        re-send the local change against the remote version;
 *   {"document": {...}}      send this document instead (PUT semantics);
 * optionally "version": the remote version to send against (when it is not known).
 * *pzOut is the conflict as bgs_conflicts lists it. Results: BGS_OK, BGS_NOT_FOUND,
 * BGS_INVALID_STATE (not open, or the remote version unknown), BGS_INVALID_JSON,
 * BGS_INVALID_ARGUMENT, BGS_INVALID_DOCUMENT; on failure nothing changes.
 */
int bgs_conflict_resolve(bgs_engine *pEng, int64_t id, const char *zJson, bgs_time now,
                         char **pzOut /* OUT */);

/*
 * The three-way merge on its own (tests, tools). zBase, zLocal, zRemote: JSON objects;
 * zRules (optional): {"fields", "default", "timeField"} as above plus "localTime" (ms).
 * *pzOut: {"merged": {...}, "conflicts": ["path", ...]}; merged keeps the remote value
 * at each unresolvable path. Objects merge key by key, recursively; arrays and scalars
 * are atomic; an absent key is a delete. Results: BGS_OK, BGS_INVALID_DOCUMENT,
 * BGS_INVALID_JSON, BGS_INVALID_ARGUMENT.
 */
int bgs_merge3(bgs_engine *pEng, const char *zBase, const char *zLocal, const char *zRemote,
               const char *zRules, char **pzOut /* OUT */);

#ifdef __cplusplus
}
#endif

#endif /* BGSYNC_H */
