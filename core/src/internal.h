/*
 * internal.h -- what the core files share and nothing outside core/ may use.
 * Shared functions are named bgs__name; file-local helpers are static.
 */
#ifndef BGS_INTERNAL_H
#define BGS_INTERNAL_H

#include <stdarg.h>

#include "bgsync.h"
#include "sqlite3.h"

/* Item states, as stored in items.state. Names in state.c: must match. */
enum {
  BGS__ST_PENDING = 0,  /* ready to claim (if it is its entity's head) */
  BGS__ST_WAITING = 1,  /* backing off until due_at */
  BGS__ST_INFLIGHT = 2, /* leased until lease_until */
  BGS__ST_DONE = 3,     /* delivered (2xx) */
  BGS__ST_CONFLICT = 4, /* 409/412, waits for resolution */
  BGS__ST_DEAD = 5,     /* dead letter, with a reason */
  BGS__ST_AUTH = 6,     /* 401, waits for fresh credentials */
  BGS__ST_COUNT = 7
};
/* SQL condition of the states that keep an entity blocked (unfinished): all but done and
   dead. Must match above. Written as NOT IN of two: SQLite tests a list of two or fewer
   by comparisons, while IN (0,1,2,4,6) filled a temporary B-tree each time it was
   evaluated, and in a partial index's WHERE that is for every row written (two a row
   updated): half of an enqueue -> claim -> complete cycle of items with an entity. */
#define BGS__UNFINISHED_SQL "state NOT IN (3,5)"

const char *bgs__state_name(int eState);
int bgs__state_from_name(const char *zName); /* -1 when unknown */

/* Priorities, stored as integers so that ascending order is the claim order. */
enum { BGS__PRI_CRITICAL = 0, BGS__PRI_HIGH = 1, BGS__PRI_NORMAL = 2, BGS__PRI_LOW = 3 };
const char *bgs__priority_name(int ePri);
int bgs__priority_from_name(const char *zName); /* -1 when unknown */

#define BGS__STMT_CACHE 128 /* prepared statements kept, keyed by their SQL literal */

struct bgs_engine {
  sqlite3 *db;
  bgs_image *pImg;  /* owned; registered with the VFS under zName */
  char zName[40];   /* the VFS name of the image */
  bgs_config cfg;   /* with defaults applied (zInstallId not kept) */
  char *zInstallId; /* prefix of idempotency keys, from meta */
  char *zErr;       /* detail of the last failure, or NULL */
  /* Statement cache: azSqlKey[i] is the address of the literal that apStmt[i] was
     prepared from. Call sites pass string literals, whose addresses are stable. */
  const char *azSqlKey[BGS__STMT_CACHE];
  sqlite3_stmt *apStmt[BGS__STMT_CACHE];
  /* The slots handed out since the last commit or rollback (each once): only these can
     have been left mid-result, so only these are reset there. */
  unsigned char abHanded[BGS__STMT_CACHE];
  unsigned short aiHanded[BGS__STMT_CACHE];
  int nHanded;
  /* The last queue loaded (queue_config.c): every call of a cycle loads its queue, and
     only bgs_queue_configure writes the queues table, which forgets it first. */
  int bQueueKnown;
  char zQueueKnown[72];
  struct bgs__queue *pQueueKnown; /* owned */
  /* The delivered history of one queue (bgs__done_prune): exactly nDoneKeep done items of
     queue zDoneQueue have an id >= idDoneFloor, and idDoneFloor is one of them. Kept only
     across calls whose every delivery is followed by its prune (bgs__begin_keep): any
     other write transaction (bgs__begin) and every rollback forget it. */
  int bDoneKnown;
  int bDoneTx; /* the transaction began with bgs__begin_keep: a prune may learn the floor */
  char zDoneQueue[72];
  int64_t nDoneKeep;
  int64_t idDoneFloor;
  /* With bDoneKnown and bDoneWindow: aDoneKept holds those nDoneKeep ids themselves,
     ascending (aDoneKept[0] == idDoneFloor), so a delivery finds the next floor without
     a query. Only for keepDone up to BGS__DONE_WINDOW_MAX; the array is owned, reused. */
  int bDoneWindow;
  int64_t *aDoneKept;
  int64_t nDoneKeptAlloc;
  /* The id the next enqueue gives (queue.c, next_id), 0 when not known. Known after an
     insert; every rollback forgets it (the insert may be undone). */
  int64_t idNext;
  /* Whether any conflict record is open (conflict.c, bgs__conflict_delivered): 0 not
     known, BGS__CONFLICTS_NONE, BGS__CONFLICTS_SOME. Only a new record opens one; it and
     every rollback (which may undo a resolution) make it SOME or not known. */
  int eConflictsOpen;
  /* Whether the store holds any conflict record, open or not (outcome.c, the prune), as
     eConflictsOpen: only a new record makes one, and a rollback forgets. */
  int eConflictRows;
  /* With bWakeKnown: no item waits (state 1) or is leased (state 2) until before tWake, so
     a claim before then has nothing to wake (queue.c, claim_wake). A lower bound: a
     claim's lease lowers it, a delivery leaves it; every other change of those states,
     each transaction but an enqueue's, claim's or outcome's, and a rollback forget it. */
  int bWakeKnown;
  bgs_time tWake;
};

enum { BGS__CONFLICTS_NONE = 1, BGS__CONFLICTS_SOME = 2 };

/* ---- engine.c: errors, statements, transactions ---- */
/* sqlite3_str_new with room for nReserve bytes: a builder grows from nothing by a
   realloc per doubling, four or five for a claim's answer (14 reallocs a cycle). */
sqlite3_str *bgs__str_new(sqlite3 *db, int nReserve);
#define BGS__STR_RESERVE_MAX 512

/* Records a formatted detail for rc and returns rc. */
int bgs__err(bgs_engine *pEng, int rc, const char *zFmt, ...);
/* Records SQLite's message and returns the matching BGS code. */
int bgs__sqlerr(bgs_engine *pEng);
/* Clears the detail at the start of a public call and tells the VFS the time
   (now < 0: a call that has no time keeps the last one). */
void bgs__enter(bgs_engine *pEng, bgs_time now);
/* A cached, reset statement for the literal zSql (NULL on failure, error recorded). */
sqlite3_stmt *bgs__stmt(bgs_engine *pEng, const char *zSql);
/* Runs a statement with no results (no cache). */
int bgs__exec(bgs_engine *pEng, const char *zSql);
/* BEGIN IMMEDIATE. bgs__begin forgets what the engine knows of the delivered history
   (bgs_engine.bDoneKnown); bgs__begin_keep keeps it, for the calls whose only changes to
   done items are deliveries that call bgs__done_prune (enqueue, claim, outcome). */
int bgs__begin(bgs_engine *pEng);
int bgs__begin_keep(bgs_engine *pEng);
int bgs__commit(bgs_engine *pEng);
/* Rolls back and passes rc through, keeping the recorded detail. */
int bgs__rollback(bgs_engine *pEng, int rc);
/* malloc'd copy of a string (NULL for NULL). */
char *bgs__strdup(const char *z);
/* Moves a SQLite-built string into *pzOut as malloc'd memory. */
int bgs__out_text(bgs_engine *pEng, const unsigned char *z, char **pzOut);

/* ---- json.c: reading JSON arguments ---- */

/* BGS_OK when zJson is a JSON object; BGS_INVALID_JSON (recorded) otherwise. */
int bgs__json_object_check(bgs_engine *pEng, const char *zJson, const char *zWhat);
/* Appends z (UTF-8) to pOut as a JSON string literal. */
void bgs__json_append_string(sqlite3_str *pOut, const char *z);
/* A 64-bit integer in decimal: the answers of the hot calls are mostly numbers, and
   SQLite's printf parsed its format for each (2,400 instructions a cycle). */
void bgs__json_append_int(sqlite3_str *pOut, int64_t v);
/* A value in a plain object: JSON types as json_type() names them. */
enum { BGS__JSON_ABSENT = 0, BGS__JSON_NULL, BGS__JSON_TRUE, BGS__JSON_FALSE, BGS__JSON_INTEGER,
       BGS__JSON_REAL, BGS__JSON_TEXT, BGS__JSON_ARRAY, BGS__JSON_OBJECT };
typedef struct bgs__json_value {
  int eType;     /* BGS__JSON_* */
  const char *z; /* TEXT: its bytes (no escapes in a plain object); else the value's text */
  size_t n;      /* bytes at z */
} bgs__json_value;
/* 1 when zJson is a plain object: RFC 8259 (as json_valid() checks it) without a
   backslash anywhere, not deeper than 64, each of the nKey fields azKey at most once;
   aVal[i] then holds field azKey[i] (eType ABSENT when missing). 0 otherwise: the caller
   reads zJson with SQLite's JSON functions instead, which say what is wrong with it. */
int bgs__json_plain_object(const char *zJson, const char *const *azKey, int nKey,
                           bgs__json_value *aVal);
/* The next member of an OBJECT value of a plain object; *piPos starts at 0. 0 at the end. */
int bgs__json_member_next(const bgs__json_value *pObj, size_t *piPos, bgs__json_value *pKey,
                          bgs__json_value *pVal);
/* The value of an INTEGER of at most 18 digits into *pi; 0 for other values. */
int bgs__json_int(const bgs__json_value *pVal, int64_t *pi);

/* ---- schema.c ---- */
int bgs__schema_ensure(bgs_engine *pEng, bgs_time now, const char *zInstallId);

/* ---- image.c: used by the VFS and the engine ---- */
int64_t bgs__image_size(const bgs_image *p);
void bgs__image_read(const bgs_image *p, int64_t iOff, void *pBuf, size_t n);
int bgs__image_write(bgs_image *p, int64_t iOff, const void *pBuf, size_t n);
int bgs__image_truncate(bgs_image *p, int64_t nSize);
/* Commit points: the image as it is now is what a rollback returns to (the undo log is
   dropped), or the image returns to the last commit point. */
void bgs__image_commit(bgs_image *p);
void bgs__image_rollback(bgs_image *p);
/* Tests: the n-th chunk buffer the image asks for from now on fails (0: none). */
void bgs__image_fail_alloc(bgs_image *p, int n);
int bgs__image_take(bgs_image *p, unsigned char **ppBuf, size_t *pnBuf);
int bgs__image_view(bgs_image *p, const bgs_chunk_view **paView, uint32_t *pnView);

/* ---- crc32.c ---- */
/* What to xor into the CRC-32 of a message after its n bytes pOld, followed by nAfter
   more bytes, became pNew (the bytes before them unchanged). */
uint32_t bgs__crc32_delta(const unsigned char *pOld, const unsigned char *pNew, size_t n,
                          size_t nAfter);
/* The same, and pOld becomes pNew (only the blocks that differ are copied). */
uint32_t bgs__crc32_delta_copy(unsigned char *pOld, const unsigned char *pNew, size_t n,
                               size_t nAfter);
/* bgs_crc32 of the n bytes at pSrc, copied to pDst (not overlapping) on the way. */
uint32_t bgs__crc32_copy(void *pDst, const void *pSrc, size_t n);

/* ---- crc32_clmul.c ---- */
/* Nonzero when bgs_crc32 folds with the carry-less multiply (x86-64 with PCLMULQDQ; 2
   with VPCLMULQDQ as well): summing a whole chunk then costs less than diffing a write
   against it (image.c). */
int bgs__crc32_clmul(void);
/* Tests: 0 keeps bgs_crc32 and image.c on the table path (what WebAssembly runs), 1 on
   the 128-bit carry-less multiply, 2 (the default) lets the CPU decide. */
void bgs__crc32_clmul_allow(int eAllow);
/* The CRC register c (no inversions) after n bytes at p; n a multiple of 16, >= 64. */
uint32_t bgs__crc32_clmul_feed(uint32_t c, const unsigned char *p, size_t n);
/* The same, with the n bytes copied to pDst. */
uint32_t bgs__crc32_clmul_copy(uint32_t c, unsigned char *pDst, const unsigned char *p,
                               size_t n);

/* ---- vfs_mirror.c ---- */
int bgs__vfs_register(const char *zName, bgs_image *pImg);
void bgs__vfs_unregister(const char *zName);
void bgs__vfs_set_now(bgs_time now);

/* ---- backoff.c: pure delay maths ---- */
enum { BGS__BACKOFF_EXPONENTIAL = 0, BGS__BACKOFF_LINEAR = 1 };
enum { BGS__JITTER_NONE = 0, BGS__JITTER_FULL = 1, BGS__JITTER_EQUAL = 2 };
typedef struct bgs__backoff {
  int eKind;         /* BGS__BACKOFF_* */
  int64_t nInitialMs; /* delay after the first failed attempt */
  double rFactor;    /* exponential growth per attempt */
  int64_t nMaxMs;    /* cap on any delay */
  int eJitter;       /* BGS__JITTER_* */
} bgs__backoff;
/* The delay before attempt nAttempt+1 after nAttempt failed ones (nAttempt >= 1).
   Deterministic in (uSeed, iItem, nAttempt). */
int64_t bgs__backoff_delay(const bgs__backoff *p, int nAttempt, uint64_t uSeed, int64_t iItem);

/* ---- queue_config.c ---- */
typedef struct bgs__queue {
  bgs__backoff backoff;
  int64_t nMaxAttempts; /* 0 = unbounded */
  int64_t nMaxAgeMs;    /* 0 = unbounded */
  int64_t nMaxItems;    /* unfinished items; 0 = unbounded */
  int64_t nMaxBytes;    /* unfinished body bytes; 0 = unbounded */
  int64_t nMaxBodyBytes;
  int bCoalesce;        /* merge never-attempted changes of an entity on enqueue */
  int nBatchMax;        /* items per batch request; 0 = the queue has no batch endpoint */
  int64_t nKeepDone;    /* delivered items kept as history (keepDone); older ones are pruned */
} bgs__queue;
#define BGS__BATCH_MAX 1000 /* upper bound of batch.maxItems */
#define BGS__KEEP_DONE_DEFAULT 100 /* keepDone of a queue that never set it */
#define BGS__KEEP_DONE_MAX 1000000000
/* Loads queue zName; BGS_UNKNOWN_QUEUE (recorded) when it is not configured. */
int bgs__queue_load(bgs_engine *pEng, const char *zName, bgs__queue *pQ);

/* ---- retry_after.c: header parsing ---- */
/* The moment a Retry-After value names (delta-seconds or an IMF-fixdate HTTP date),
   or -1 when the value is not valid. */
bgs_time bgs__retry_after_parse(const char *zValue, bgs_time now);

/* ---- queue.c ---- */
/* An absolute http(s) URL with a host and no whitespace or control characters. */
int bgs__url_ok(const char *z);
/* Leases up to nMax ready items of zQueue (waking due ones first, expiring those past the
   queue's maxAgeMs) and appends their JSON objects, comma-separated, to pOut. *pn gets
   the count; aId (nMax long, may be NULL) the ids in claim order. Inside a transaction. */
int bgs__claim_items(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now,
                     sqlite3_str *pOut, int64_t *aId, int *pn);
/* A leased item (?1 its id) as the claim returns it. queue.c builds the same text in C
   where it can; here so the tests can compare. */
#define BGS__LEASED_SQL                                                                 \
  "SELECT json_object('id', id, 'key', key, 'queue', queue,"                            \
  "  'method', method, 'url', url, 'headers', json(headers),"                           \
  "  'priority', CASE priority WHEN 0 THEN 'critical' WHEN 1 THEN 'high'"               \
  "   WHEN 2 THEN 'normal' ELSE 'low' END,"                                             \
  "  'entity', entity, 'attempt', attempts, 'bodySize', body_size,"                     \
  "  'leaseUntil', lease_until,"                                                        \
  "  'baseVersion', json_extract(extra, '$.baseVersion'),"                              \
  "  'bodyRef', extra -> '$.bodyRef') FROM items WHERE id = ?1"


/* ---- coalesce.c ---- */
/* A change being enqueued (validated; borrowed pointers). */
typedef struct bgs__change {
  const char *zQueue, *zMethod, *zUrl, *zHeaders, *zEntity;
  int ePriority;
  const void *pBody;
  size_t nBody;
} bgs__change;
/* Merges c into its entity's never-attempted tail when the rules in bgsync.h allow.
   On a merge or a cancellation *pbDone is 1 and *pzOut holds the enqueue result;
   otherwise nothing changed. Inside the enqueue's transaction. */
int bgs__coalesce(bgs_engine *pEng, const bgs__change *c, const bgs__queue *pQ, bgs_time now,
                  char **pzOut, int *pbDone);

/* ---- outcome.c ---- */
/* The attempt log is trimmed when an entry's seq is a multiple of this (outcome.c). */
#define BGS__ATTEMPT_TRIM 64
/* One report, as bgs_outcome and bgs_batch_outcome apply it. */
typedef struct bgs__report {
  int64_t id;
  int64_t nAttempt;
  int iStatus;
  char *zRetryAfter;   /* the retry-after header, or NULL (owned by the caller) */
  const char *zReason; /* overrides the reason of a retry ("missing-from-batch"), or NULL */
  int bRetry;          /* a failed batch: any status but 401 means retry (status still logged) */
  char *zRefused;      /* the glue did not send it (its own rule, e.g. "origin-not-allowed"):
                          dead at once with this reason; owned by the caller, or NULL */
  const char *zJson;   /* the report as JSON; conflict.c reads its "headers" (ETag), or NULL */
} bgs__report;
/* Applies r inside the caller's transaction; *pzOut gets the decision JSON. BGS_STALE and
   BGS_NOT_FOUND change nothing. */
int bgs__outcome_apply(bgs_engine *pEng, const bgs__report *r, const void *pBody, size_t nBody,
                       bgs_time now, char **pzOut);
/* Item iItem of zQueue became done: deletes the queue's oldest done items beyond its newest
   keepDone, except those a conflict record still refers to. Every path that sets state
   done calls it, once per item, last, inside its transaction (the item itself may be
   deleted). */
int bgs__done_prune(bgs_engine *pEng, const char *zQueue, int64_t iItem);
/* The prune, in two steps so that the newest id is remembered only when it goes:
   the threshold (?1 queue, ?2 keepDone) is the (keepDone+1)-th newest done id, and the
   delete (?1 queue, ?2 threshold) is one range of index items_done (queue, rowid) below
   it. Here so the tests can check their plans. */
#define BGS__DONE_THRESHOLD_SQL                                                         \
  "SELECT id, id = (SELECT max(id) FROM items) FROM items"                              \
  " WHERE queue = ?1 AND state = 3 ORDER BY id DESC LIMIT 1 OFFSET ?2"
/* The fast path (bgs_engine.idDoneFloor known, ?1 queue, ?2 the floor): the next done id
   above the floor, or the newest below it. One step of index items_done each. */
#define BGS__DONE_WINDOW_MAX 1024
/* The newest done ids above a threshold (?2), ascending, at most ?3 (the window). */
#define BGS__DONE_KEPT_SQL                                                              \
  "SELECT id FROM items WHERE queue = ?1 AND state = 3 AND id > ?2 ORDER BY id LIMIT ?3"
#define BGS__DONE_ABOVE_SQL "SELECT min(id) FROM items WHERE queue = ?1 AND state = 3 AND id > ?2"
#define BGS__DONE_BELOW_SQL "SELECT max(id) FROM items WHERE queue = ?1 AND state = 3 AND id < ?2"
#define BGS__DONE_PRUNE_SQL                                                             \
  "DELETE FROM items WHERE queue = ?1 AND state = 3 AND id <= ?2"                        \
  " AND NOT EXISTS (SELECT 1 FROM conflicts WHERE conflicts.item_id = items.id)"
/* Before a delete that may remove the newest item: meta.last_item_id keeps the highest id
   ever given, so ids (and idempotency keys) are never reused. Writes only when it grew. */
int bgs__ids_remember(bgs_engine *pEng);

/* ---- entity.c ---- */
/* After an item of zEntity finished (done, dead, removed): the next one becomes head. */
int bgs__entity_advance(bgs_engine *pEng, const char *zEntity);
int bgs__item_entity(bgs_engine *pEng, int64_t id, char **pzEntity, char **pzQueue);

/* ---- merge.c, conflict.c: conflicts (protocol in bgsync.h) ---- */
enum { BGS__RULE_PREFER_LOCAL = 0, BGS__RULE_PREFER_REMOTE = 1, BGS__RULE_NEWER_WINS = 2,
       BGS__RULE_UNRESOLVABLE = 3 }; /* names in merge.c: must match */
typedef struct bgs__merge_rules {
  const char *zRules;  /* {"fields": {path: rule}, "default": rule, "timeField"}, or NULL */
  int64_t nLocalTime;  /* the local edit time (ms), -1 = unknown */
  int64_t nRemoteTime; /* the remote document's edit time (ms), -1 = unknown */
} bgs__merge_rules;
int bgs__rule_from_name(const char *zName); /* -1 when unknown */
/* BGS_OK when rules (or a conflict configuration) has valid fields/default/timeField. */
int bgs__rules_check(bgs_engine *pEng, const char *zRules);
/* The remote document's edit time per zRules' timeField, or -1. */
int64_t bgs__remote_time(bgs_engine *pEng, const char *zRules, const char *zRemote);

/* dates.c */
int64_t bgs__days_from_civil(int64_t y, int m, int d);
int64_t bgs__iso_time_parse(const char *z);
/* BGS_OK when zDoc (nDoc bytes) is a JSON object within the document limits;
   BGS_INVALID_DOCUMENT (recorded, zWhat names it) otherwise. */
int bgs__doc_check(bgs_engine *pEng, const char *zDoc, size_t nDoc, const char *zWhat);
/* Three-way merge of checked documents: *pzMerged the merged object, *pzConflicts a JSON
   array of unresolvable paths ("[]" when none); both malloc'd. */
int bgs__merge3(bgs_engine *pEng, const char *zBase, const char *zLocal, const char *zRemote,
                const bgs__merge_rules *pRules, char **pzMerged, char **pzConflicts);
/* bgs_queue_configure: validates and stores zJson's "conflict" for queue zQueue. */
int bgs__conflict_configure(bgs_engine *pEng, const char *zJson, const char *zQueue);
/* bgs_enqueue: validates baseVersion, baseDocument, editedAt, conflictStrategy; *pzExtra
   gets the items.extra JSON to store (malloc'd), or NULL when none was given. */
int bgs__conflict_enqueue_fields(bgs_engine *pEng, const char *zJson, char **pzExtra);
/* An outcome put item iItem into state conflict: records it, applies its strategy and
   rewrites *pzOut (the decision JSON). zReport: the report JSON whose "headers" give
   the ETag, or NULL. Inside the outcome's transaction. */
int bgs__conflict_arise(bgs_engine *pEng, int64_t iItem, int iStatus, const char *zReport,
                        const void *pBody, size_t nBody, bgs_time now, char **pzOut);
/* Item iItem (of entity zEntity, NULL when it has none) was delivered: later items of its
   entity move to the ETag in zReport. */
int bgs__conflict_delivered(bgs_engine *pEng, int64_t iItem, const char *zEntity,
                            const char *zReport);

#endif
