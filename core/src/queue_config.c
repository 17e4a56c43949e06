/*
 * queue_config.c -- queues and their policies (backoff, limits, coalescing, batching,
 * delivered history). A queue must be configured before items are enqueued into it, so
 * a typo in a queue name is an error, not a silently new queue. Options of later
 * features live in the queues.extra JSON column ({"coalesce": 0|1, "batch": {"url",
 * "maxItems"}, "keepDone": n}), so adding one needs no migration.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A numeric option: its JSON path, its column and its bounds. */
typedef struct QueueOption {
  const char *zPath;
  const char *zColumn;
  double rMin, rMax;
  int bInteger;
} QueueOption;

static const QueueOption aOption[] = {
    {"$.backoff.initialMs", "initial_ms", 0, 86400000.0, 1},
    {"$.backoff.factor", "factor", 1, 100, 0},
    {"$.backoff.maxMs", "max_ms", 0, 7 * 86400000.0, 1},
    {"$.maxAttempts", "max_attempts", 0, 1e9, 1},
    {"$.maxAgeMs", "max_age_ms", 0, 366 * 86400000.0, 1},
    {"$.maxItems", "max_items", 0, 1e12, 1},
    {"$.maxBytes", "max_bytes", 0, 1e15, 1},
    {"$.maxBodyBytes", "max_body_bytes", 0, 1e12, 1},
};
#define N_OPTION (sizeof(aOption) / sizeof(aOption[0]))

/* An option named by a string: its JSON path, its column and its names in value order. */
typedef struct QueueChoice {
  const char *zPath;
  const char *zColumn;
  const char *azName[4];
} QueueChoice;

static const QueueChoice aChoice[] = {
    {"$.backoff.kind", "backoff_kind", {"exponential", "linear", NULL}},
    {"$.backoff.jitter", "jitter", {"none", "full", "equal", NULL}},
};
#define N_CHOICE (sizeof(aChoice) / sizeof(aChoice[0]))

static int field_read(bgs_engine *pEng, const char *zJson, const char *zPath,
                      const char **pzType, sqlite3_value **ppVal) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT json_type(?1, ?2), json_extract(?1, ?2)");
  *pzType = NULL;
  *ppVal = NULL;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *pzType = (const char *)sqlite3_column_text(pStmt, 0);
  *ppVal = sqlite3_column_value(pStmt, 1);
  return BGS_OK; /* valid until the statement is next used */
}

static int column_set(bgs_engine *pEng, const char *zName, const char *zColumn,
                      sqlite3_value *pVal) {
  /* zColumn comes from the tables above, never from input. */
  char *zSql = sqlite3_mprintf("UPDATE queues SET %s = ?2 WHERE name = ?1", zColumn);
  sqlite3_stmt *pStmt = NULL;
  int rc = BGS_OK;
  if (zSql == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  if (sqlite3_prepare_v2(pEng->db, zSql, -1, &pStmt, NULL) != SQLITE_OK) {
    rc = bgs__sqlerr(pEng);
  } else {
    sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
    sqlite3_bind_value(pStmt, 2, pVal);
    if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zSql);
  return rc;
}

/* "coalesce": true|false, "batch": {"url", "maxItems"} | null and "keepDone": n, kept in
   queues.extra. Everything is checked before anything is written. */
static int configure_extra(bgs_engine *pEng, const char *zJson, const char *zName) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT json_type(?1, '$.coalesce'), json_type(?1, '$.batch'),"
                                  " json_type(?1, '$.batch.url'), json_extract(?1, '$.batch.url'),"
                                  " json_type(?1, '$.batch.maxItems'),"
                                  " json_extract(?1, '$.batch.maxItems'),"
                                  " json_type(?1, '$.keepDone'), json_extract(?1, '$.keepDone')");
  const char *zType;
  int bCoalesce = -1; /* -1 = keep */
  int bBatch = -1;    /* -1 = keep, 0 = remove, 1 = set */
  char *zUrl = NULL;
  int64_t nMax = 0;
  int64_t nKeepDone = -1; /* -1 = keep */
  int rc = BGS_OK;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zType = (const char *)sqlite3_column_text(pStmt, 0);
  if (zType != NULL) {
    if (strcmp(zType, "true") == 0) bCoalesce = 1;
    else if (strcmp(zType, "false") == 0) bCoalesce = 0;
    else rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "coalesce must be true or false");
  }
  zType = (const char *)sqlite3_column_text(pStmt, 1);
  if (rc == BGS_OK && zType != NULL) {
    if (strcmp(zType, "null") == 0) {
      bBatch = 0;
    } else if (strcmp(zType, "object") != 0) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "batch must be an object or null");
    } else {
      const char *zUrlType = (const char *)sqlite3_column_text(pStmt, 2);
      const char *zMaxType = (const char *)sqlite3_column_text(pStmt, 4);
      nMax = sqlite3_column_int64(pStmt, 5);
      if (zUrlType == NULL || strcmp(zUrlType, "text") != 0 ||
          !bgs__url_ok((const char *)sqlite3_column_text(pStmt, 3))) {
        rc = bgs__err(pEng, BGS_INVALID_URL, "batch.url must be an absolute http(s) URL");
      } else if (zMaxType == NULL || strcmp(zMaxType, "integer") != 0 || nMax < 1 ||
                 nMax > BGS__BATCH_MAX) {
        rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "batch.maxItems must be an integer from 1 to %d",
                      BGS__BATCH_MAX);
      } else {
        bBatch = 1;
        zUrl = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
        if (zUrl == NULL) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
      }
    }
  }
  zType = (const char *)sqlite3_column_text(pStmt, 6);
  if (rc == BGS_OK && zType != NULL) {
    /* json_type, not the value: 1.5, "10" and true must not pass as integers. */
    int64_t n = sqlite3_column_int64(pStmt, 7);
    if (strcmp(zType, "integer") != 0 || n < 0 || n > BGS__KEEP_DONE_MAX) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT,
                    "keepDone must be an integer from 0 to %d (delivered items kept)",
                    BGS__KEEP_DONE_MAX);
    } else {
      nKeepDone = n;
    }
  }
  sqlite3_reset(pStmt);
  if (rc == BGS_OK && bCoalesce >= 0) {
    pStmt = bgs__stmt(pEng, "UPDATE queues SET extra = json_set(extra, '$.coalesce', ?2) WHERE name = ?1");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
      sqlite3_bind_int(pStmt, 2, bCoalesce);
      if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
    }
  }
  if (rc == BGS_OK && bBatch >= 0) {
    pStmt = bgs__stmt(pEng,
                      "UPDATE queues SET extra = CASE WHEN ?2 IS NULL THEN json_remove(extra, '$.batch')"
                      " ELSE json_set(extra, '$.batch', json_object('url', ?2, 'maxItems', ?3)) END"
                      " WHERE name = ?1");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
      if (zUrl) sqlite3_bind_text(pStmt, 2, zUrl, -1, SQLITE_STATIC);
      sqlite3_bind_int64(pStmt, 3, nMax);
      if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
    }
  }
  if (rc == BGS_OK && nKeepDone >= 0) {
    /* A lower value takes effect at the queue's next delivery (outcome.c prunes then). */
    pStmt = bgs__stmt(pEng,
                      "UPDATE queues SET extra = json_set(extra, '$.keepDone', ?2)"
                      " WHERE name = ?1");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
      sqlite3_bind_int64(pStmt, 2, nKeepDone);
      if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
    }
  }
  free(zUrl);
  return rc;
}

static int configure(bgs_engine *pEng, const char *zJson, const char *zName) {
  sqlite3_stmt *pStmt;
  size_t i;
  int rc;
  pStmt = bgs__stmt(pEng, "INSERT OR IGNORE INTO queues(name) VALUES (?1)");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  for (i = 0; i < N_OPTION; i++) {
    const char *zType;
    sqlite3_value *pVal;
    double r;
    rc = field_read(pEng, zJson, aOption[i].zPath, &zType, &pVal);
    if (rc != BGS_OK) return rc;
    if (zType == NULL) continue; /* absent: keep */
    if (strcmp(zType, "integer") != 0 && (aOption[i].bInteger || strcmp(zType, "real") != 0)) {
      return bgs__err(pEng, BGS_INVALID_ARGUMENT, "%s must be %s", aOption[i].zPath + 2,
                      aOption[i].bInteger ? "an integer" : "a number");
    }
    r = sqlite3_value_double(pVal);
    if (r < aOption[i].rMin || r > aOption[i].rMax) {
      return bgs__err(pEng, BGS_INVALID_ARGUMENT, "%s must be between %.0f and %.0f",
                      aOption[i].zPath + 2, aOption[i].rMin, aOption[i].rMax);
    }
    rc = column_set(pEng, zName, aOption[i].zColumn, pVal);
    if (rc != BGS_OK) return rc;
  }
  for (i = 0; i < N_CHOICE; i++) {
    const char *zType;
    sqlite3_value *pVal;
    const char *zVal;
    int k, iFound = -1;
    rc = field_read(pEng, zJson, aChoice[i].zPath, &zType, &pVal);
    if (rc != BGS_OK) return rc;
    if (zType == NULL) continue;
    zVal = strcmp(zType, "text") == 0 ? (const char *)sqlite3_value_text(pVal) : NULL;
    for (k = 0; zVal != NULL && aChoice[i].azName[k] != NULL; k++) {
      if (strcmp(aChoice[i].azName[k], zVal) == 0) iFound = k;
    }
    if (iFound < 0) {
      return bgs__err(pEng, BGS_INVALID_ARGUMENT, "%s: unknown value", aChoice[i].zPath + 2);
    }
    {
      sqlite3_value *pInt = NULL;
      sqlite3_stmt *pTmp = bgs__stmt(pEng, "SELECT ?1");
      if (pTmp == NULL) return BGS_ERROR;
      sqlite3_bind_int(pTmp, 1, iFound);
      if (sqlite3_step(pTmp) != SQLITE_ROW) return bgs__sqlerr(pEng);
      pInt = sqlite3_column_value(pTmp, 0);
      rc = column_set(pEng, zName, aChoice[i].zColumn, pInt);
      if (rc != BGS_OK) return rc;
    }
  }
  rc = configure_extra(pEng, zJson, zName);
  if (rc != BGS_OK) return rc;
  rc = bgs__conflict_configure(pEng, zJson, zName); /* "conflict", conflict.c */
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, "SELECT initial_ms <= max_ms FROM queues WHERE name = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (!sqlite3_column_int(pStmt, 0)) {
    return bgs__err(pEng, BGS_INVALID_ARGUMENT, "backoff.initialMs must not exceed backoff.maxMs");
  }
  return BGS_OK;
}

int bgs_queue_configure(bgs_engine *pEng, const char *zJson, bgs_time now) {
  sqlite3_stmt *pStmt;
  char *zName = NULL;
  int rc;
  if (pEng == NULL) return BGS_MISUSE;
  bgs__enter(pEng, now);
  pEng->bQueueKnown = 0; /* before anything is written: see bgs__queue_load */
  rc = bgs__json_object_check(pEng, zJson, "queue configuration");
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, "SELECT json_type(?1, '$.name'), json_extract(?1, '$.name')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) == SQLITE_NULL ||
      strcmp((const char *)sqlite3_column_text(pStmt, 0), "text") != 0 ||
      sqlite3_column_bytes(pStmt, 1) < 1 || sqlite3_column_bytes(pStmt, 1) > 64) {
    return bgs__err(pEng, BGS_INVALID_ARGUMENT, "name must be a string of 1 to 64 bytes");
  }
  zName = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
  sqlite3_reset(pStmt);
  if (zName == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  rc = bgs__begin(pEng);
  if (rc == BGS_OK) {
    rc = configure(pEng, zJson, zName);
    rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
  }
  free(zName);
  return rc;
}

int bgs__queue_load(bgs_engine *pEng, const char *zName, bgs__queue *pQ) {
  sqlite3_stmt *pStmt;
  size_t nName = strlen(zName);
  if (pEng->bQueueKnown && strcmp(pEng->zQueueKnown, zName) == 0) {
    *pQ = *pEng->pQueueKnown;
    return BGS_OK;
  }
  pStmt = bgs__stmt(pEng,
                                  "SELECT backoff_kind, initial_ms, factor, max_ms, jitter,"
                                  " max_attempts, max_age_ms, max_items, max_bytes, max_body_bytes,"
                                  " coalesce(json_extract(extra, '$.coalesce'), 0),"
                                  " coalesce(json_extract(extra, '$.batch.maxItems'), 0),"
                                  " coalesce(json_extract(extra, '$.keepDone'), ?2)"
                                  " FROM queues WHERE name = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, BGS__KEEP_DONE_DEFAULT);
  if (sqlite3_step(pStmt) != SQLITE_ROW) {
    sqlite3_reset(pStmt);
    return bgs__err(pEng, BGS_UNKNOWN_QUEUE, "no queue named '%s'", zName);
  }
  pQ->backoff.eKind = sqlite3_column_int(pStmt, 0);
  pQ->backoff.nInitialMs = sqlite3_column_int64(pStmt, 1);
  pQ->backoff.rFactor = sqlite3_column_double(pStmt, 2);
  pQ->backoff.nMaxMs = sqlite3_column_int64(pStmt, 3);
  pQ->backoff.eJitter = sqlite3_column_int(pStmt, 4);
  pQ->nMaxAttempts = sqlite3_column_int64(pStmt, 5);
  pQ->nMaxAgeMs = sqlite3_column_int64(pStmt, 6);
  pQ->nMaxItems = sqlite3_column_int64(pStmt, 7);
  pQ->nMaxBytes = sqlite3_column_int64(pStmt, 8);
  pQ->nMaxBodyBytes = sqlite3_column_int64(pStmt, 9);
  pQ->bCoalesce = sqlite3_column_int(pStmt, 10) != 0;
  pQ->nBatchMax = sqlite3_column_int(pStmt, 11);
  pQ->nKeepDone = sqlite3_column_int64(pStmt, 12);
  sqlite3_reset(pStmt);
  if (nName < sizeof(pEng->zQueueKnown)) {
    if (pEng->pQueueKnown == NULL) pEng->pQueueKnown = malloc(sizeof(*pEng->pQueueKnown));
    if (pEng->pQueueKnown != NULL) {
      memcpy(pEng->zQueueKnown, zName, nName + 1);
      *pEng->pQueueKnown = *pQ;
      pEng->bQueueKnown = 1;
    }
  }
  return BGS_OK;
}

int bgs_queue_limits(bgs_engine *pEng, const char *zQueue, char **pzOut) {
  bgs__queue q;
  char *z;
  int rc;
  if (pEng == NULL || zQueue == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, -1);
  rc = bgs__queue_load(pEng, zQueue, &q);
  if (rc != BGS_OK) return rc;
  z = sqlite3_mprintf("{\"maxItems\":%lld,\"maxBytes\":%lld,\"maxBodyBytes\":%lld}",
                      (long long)q.nMaxItems, (long long)q.nMaxBytes, (long long)q.nMaxBodyBytes);
  if (z == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  rc = bgs__out_text(pEng, (const unsigned char *)z, pzOut);
  sqlite3_free(z);
  return rc;
}
