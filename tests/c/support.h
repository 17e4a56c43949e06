/*
 * support.h -- what the C tests share: a host store that keeps the chunks the engine
 * hands over (as the JS glue keeps them in IndexedDB), JSON field peeking, engines over
 * a fresh or a stored image.
 */
#ifndef BGS_TEST_SUPPORT_H
#define BGS_TEST_SUPPORT_H

#include "bgsync.h"

/* The host's durable copy: chunks and file size, as written by store_flush. */
typedef struct host_store {
  unsigned char **apChunk;
  uint32_t *aCrc;
  uint32_t nChunk;
  int64_t nSize;
  int nFlush; /* flushes with changes */
} host_store;

void store_init(host_store *p);
void store_free(host_store *p);
/* Takes the engine's changes and applies them to p (a flush that always succeeds). */
void store_flush(bgs_engine *pEng, host_store *p);
/* An image loaded from p, as at start-up. */
bgs_image *store_image(const host_store *p);
/* Writes the stored file to a path, reads it back (the file backend). */
void store_save_file(const host_store *p, const char *zPath);
void store_load_file(host_store *p, const char *zPath);

/* A new engine over an empty image, configured with queue "q" (default policy, no jitter). */
bgs_engine *engine_new(void);
/* Reopens an engine over the stored image. */
bgs_engine *engine_reopen(const host_store *p);

/* Enqueues a POST to https://api.test/<zPath> in queue "q"; returns its id. */
int64_t enqueue_simple(bgs_engine *pEng, const char *zPath, bgs_time now);
/* Enqueues with extra JSON members appended (e.g. "\"entity\":\"a\""). */
int64_t enqueue_with(bgs_engine *pEng, const char *zPath, const char *zExtra, bgs_time now);

/* Claims up to nMax of queue "q"; fills aId (and aAttempt) with what came back; returns count. */
int claim_ids(bgs_engine *pEng, int nMax, bgs_time now, int64_t *aId, int64_t *aAttempt);

/* Reports status for (id, attempt); returns the rc; *pzState gets the decided state (static buf). */
int report(bgs_engine *pEng, int64_t id, int64_t nAttempt, int iStatus, const char *zHeaders,
           bgs_time now, char *zState, size_t nState);

/* The integer at a top-level path in a JSON text ("$.counts.pending"). -1 if absent. */
int64_t json_int(const char *zJson, const char *zPath);
/* The string at a path, copied into zOut. */
void json_str(const char *zJson, const char *zPath, char *zOut, size_t nOut);
/* A status count for state zState over all queues. */
int64_t count_state(bgs_engine *pEng, const char *zState, bgs_time now);

#endif

/* ---- helpers for the decision tests ---- */

/* An engine like engine_new, whose queue "q" is then configured with zQueueJson
   (members of the configuration object, e.g. "\"maxAttempts\":3"), or NULL. */
bgs_engine *engine_with(const char *zQueueJson);
/* The same with a config (seed, lease, log size). */
bgs_engine *engine_with_config(const bgs_config *pCfg, const char *zQueueJson);

/* Enqueues zJson (a full enqueue object) with a text body (may be NULL); checks BGS_OK and
   returns the result JSON (free with bgs_free). */
char *enqueue_raw(bgs_engine *pEng, const char *zJson, const char *zBody, bgs_time now);

/* Claims up to nMax of zQueue, like claim_ids. */
int claim_ids_in(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now, int64_t *aId,
                 int64_t *aAttempt);

/* A field of item id as bgs_items lists it (text / integer; "" / -1 when absent). */
void item_str(bgs_engine *pEng, int64_t id, const char *zField, char *zOut, size_t nOut);
int64_t item_int(bgs_engine *pEng, int64_t id, const char *zField);
/* Number of items bgs_items lists for a filter (NULL = all). */
int64_t items_count(bgs_engine *pEng, const char *zFilter);
/* The body of item id as a NUL-terminated string (static buffer). */
const char *body_text(bgs_engine *pEng, int64_t id);

/* json_array_length at a path ("$" for the top). */
int64_t json_len(const char *zJson, const char *zPath);
/* 1 when two JSON texts are equal after normalization (json()). */
int same_json(const char *zA, const char *zB);
/* 1 when SQLite's plan of zSql names zWant (an index use) and scans no table. */
int plan_is(bgs_engine *pEng, const char *zSql, const char *zWant);
