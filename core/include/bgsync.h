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
  XX(CORRUPT, 16, "storage-corrupt", "the stored database is damaged")

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

/*
 * Declares or updates a queue. zJson:
 *   {"name": "outbox",                       (required, 1..64 chars)
 *    "backoff": {"kind": "exponential"|"linear", "initialMs": 30000, "factor": 2,
 *                "maxMs": 3600000, "jitter": "none"|"full"|"equal"},
 *    "maxAttempts": 0 (unbounded), "maxAgeMs": 0 (unbounded),
 *    "maxItems": 0, "maxBytes": 0 (0 = unbounded), "maxBodyBytes": 16777216}
 * Missing fields keep their defaults (or previous value).
 */
int bgs_queue_configure(bgs_engine *pEng, const char *zJson, bgs_time now);

/*
 * Enqueues one request. zJson:
 *   {"queue": "outbox", "method": "POST", "url": "https://...",
 *    "headers": {"content-type": "application/json"},   (optional, string values)
 *    "priority": "critical"|"high"|"normal"|"low",      (optional, normal)
 *    "entity": "note:42"}                                 (optional)
 * pBody/nBody is the body (may be NULL/0). On success *pzOut is
 *   {"id": 7, "key": "<idempotency key>"}.
 * Results: BGS_OK, BGS_INVALID_JSON, BGS_INVALID_ARGUMENT, BGS_INVALID_METHOD,
 * BGS_INVALID_URL, BGS_INVALID_PRIORITY, BGS_UNKNOWN_QUEUE, BGS_BODY_TOO_LARGE,
 * BGS_QUEUE_FULL. On failure nothing is stored.
 */
int bgs_enqueue(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                bgs_time now, char **pzOut /* OUT */);

/*
 * Leases up to nMax ready items of zQueue: due items by priority then FIFO, only the
 * head of each entity, items whose lease expired included. Each claimed item counts an
 * attempt. *pzOut is a JSON array of
 *   {"id", "key", "queue", "method", "url", "headers", "priority", "entity",
 *    "attempt", "bodySize", "leaseUntil"}.
 */
int bgs_claim(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now,
              char **pzOut /* OUT */);

/* A copy of item id's body; *ppBody is NULL and *pnBody 0 for an empty body. */
int bgs_body(bgs_engine *pEng, int64_t id, unsigned char **ppBody /* OUT */,
             size_t *pnBody /* OUT */);

/*
 * Reports how an attempt ended. zJson:
 *   {"id": 7, "attempt": 1, "status": 503,       (status 0 = network error / timeout)
 *    "headers": {"retry-after": "120"}}         (optional)
 * pBody/nBody: the response body when relevant (may be NULL/0).
 * *pzOut describes the decision: {"id", "state", "delayMs", "dueAt", "reason"}.
 * Results: BGS_OK, BGS_NOT_FOUND, BGS_STALE (the attempt is not the one in flight;
 * nothing changes), BGS_INVALID_JSON, BGS_INVALID_ARGUMENT.
 */
int bgs_outcome(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                bgs_time now, char **pzOut /* OUT */);

/*
 * Counts and scheduling facts. zQueue NULL = all queues. *pzOut:
 *   {"counts": {"pending", "inflight", "waiting", "done", "conflict", "dead", "auth"},
 *    "nextWakeAt": ms or null, "queues": {"name": {counts...}}}
 */
int bgs_status(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut /* OUT */);

/*
 * Items for inspection, newest last. zJson (optional): {"queue", "state", "limit"}.
 * *pzOut is a JSON array of {"id","key","queue","method","url","state","priority",
 * "entity","attempts","dueAt","createdAt","updatedAt","lastStatus"}.
 */
int bgs_items(bgs_engine *pEng, const char *zJson, char **pzOut /* OUT */);

#ifdef __cplusplus
}
#endif

#endif /* BGSYNC_H */
