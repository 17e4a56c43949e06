/*
 * queue.c -- enqueue (with coalescing) and claim: FIFO within a priority, only entity
 * heads, leases, expiry of items past their queue's maxAgeMs.
 *
 * Invariants:
 *  - an item is claimable iff state = pending and head = 1 (index items_ready);
 *  - a claim first wakes items whose delay ended and items whose lease expired, both
 *    through range scans on their own indexes, so its cost does not grow with the
 *    number of items that are not yet due;
 *  - an item in flight is never handed out again while its lease holds; each claim
 *    counts an attempt, and the attempt number is the lease's token (see outcome.c);
 *  - an item older than its queue's maxAgeMs is never sent: a claim that meets it makes
 *    it a dead letter ("expired") and takes the next one;
 *  - coalescing only ever touches items with attempts = 0 and state = pending: a change
 *    that may have reached the server is never rewritten (rules in bgsync.h);
 *  - item ids (and so idempotency keys) are never reused, also after removals.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BGS__MAX_URL 8192
#define BGS__MAX_ENTITY 512
#define BGS__MAX_HEADERS_JSON 65536

static const char *const azMethod[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                                       NULL};

static int method_ok(const char *z) {
  int i;
  for (i = 0; azMethod[i] != NULL; i++) {
    if (strcmp(azMethod[i], z) == 0) return 1;
  }
  return 0;
}

/* Absolute http(s) URL with a host and no whitespace or control characters. The glue
   resolves relative URLs and applies the origin allow-list before this. */
int bgs__url_ok(const char *z) {
  const char *zHost;
  const unsigned char *p;
  if (strncmp(z, "https://", 8) == 0) zHost = z + 8;
  else if (strncmp(z, "http://", 7) == 0) zHost = z + 7;
  else return 0;
  if (*zHost == 0 || *zHost == '/' || *zHost == '?' || *zHost == '#') return 0;
  for (p = (const unsigned char *)z; *p; p++) {
    if (*p <= 0x20 || *p == 0x7F) return 0;
  }
  return strlen(z) <= BGS__MAX_URL;
}

typedef struct EnqueueArgs {
  char *zQueue, *zMethod, *zUrl, *zHeaders, *zEntity;
  char *zExtra; /* items.extra: base version/document, edit time, conflict strategy, bodyRef */
  int ePriority;
  int bRef;         /* the body lives outside the database (bodyRef) */
  int64_t nRefSize; /* its size in bytes, counted as the item's body size */
} EnqueueArgs;

static void args_free(EnqueueArgs *a) {
  free(a->zQueue);
  free(a->zMethod);
  free(a->zUrl);
  free(a->zHeaders);
  free(a->zEntity);
  free(a->zExtra);
}

#define BGS__MAX_BODY_REF 128

/* An external body: the host keeps large bodies in its own blob store, written before the
   item, and enqueues {"bodyRef": {"id": "<1..128 of A-Z a-z 0-9 . _ ->", "size": N}} with
   no body. The reference goes into items.extra (so it commits with the item), N counts as
   the body size for limits, claim and items return it, and such items never coalesce
   (their bytes are not here to merge). */
static int body_ref_read(bgs_engine *pEng, const char *zJson, EnqueueArgs *a) {
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "SELECT json_type(?1, '$.bodyRef'), json_type(?1, '$.bodyRef.id'),"
      " length(json_extract(?1, '$.bodyRef.id')),"
      " json_extract(?1, '$.bodyRef.id') GLOB '*[^A-Za-z0-9._-]*',"
      " json_type(?1, '$.bodyRef.size'), json_extract(?1, '$.bodyRef.size'),"
      " json_set(coalesce(?2, '{}'), '$.bodyRef', json_object('id',"
      "  json_extract(?1, '$.bodyRef.id'), 'size', json_extract(?1, '$.bodyRef.size')))");
  const char *zType;
  int rc = BGS_OK;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (a->zExtra) sqlite3_bind_text(pStmt, 2, a->zExtra, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zType = (const char *)sqlite3_column_text(pStmt, 0);
  if (zType == NULL || strcmp(zType, "null") == 0) {
    sqlite3_reset(pStmt);
    return BGS_OK;
  }
  zType = (const char *)sqlite3_column_text(pStmt, 1);
  if (zType == NULL || strcmp(zType, "text") != 0 || sqlite3_column_int(pStmt, 2) < 1 ||
      sqlite3_column_int(pStmt, 2) > BGS__MAX_BODY_REF || sqlite3_column_int(pStmt, 3) != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT,
                  "bodyRef.id must be 1 to %d characters of A-Z, a-z, 0-9, '.', '_', '-'",
                  BGS__MAX_BODY_REF);
  } else {
    zType = (const char *)sqlite3_column_text(pStmt, 4);
    if (zType == NULL || strcmp(zType, "integer") != 0 || sqlite3_column_int64(pStmt, 5) < 0) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "bodyRef.size must be an integer >= 0");
    }
  }
  if (rc == BGS_OK) {
    char *zExtra = bgs__strdup((const char *)sqlite3_column_text(pStmt, 6));
    if (zExtra == NULL) {
      rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    } else {
      free(a->zExtra);
      a->zExtra = zExtra;
      a->bRef = 1;
      a->nRefSize = sqlite3_column_int64(pStmt, 5);
    }
  }
  sqlite3_reset(pStmt);
  return rc;
}

/* Reads and validates the enqueue JSON into a (copies; the statement is reset after). */
static int args_read(bgs_engine *pEng, const char *zJson, EnqueueArgs *a) {
  static const char zSql[] =
      "SELECT json_type(?1,'$.queue'), json_extract(?1,'$.queue'),"
      " json_type(?1,'$.method'), upper(json_extract(?1,'$.method')),"
      " json_type(?1,'$.url'), json_extract(?1,'$.url'),"
      " json_type(?1,'$.priority'), json_extract(?1,'$.priority'),"
      " json_type(?1,'$.entity'), json_extract(?1,'$.entity'),"
      " json_type(?1,'$.headers')";
  /* Header names are tokens (RFC 9110) stored lower-case; values are strings without
     CR or LF. Counts of offenders come back with the normalized object. */
  static const char zHeaderSql[] =
      "SELECT json_group_object(lower(key), value),"
      " sum(type <> 'text'),"
      " sum(key = '' OR key GLOB '*[^!#$%&''*+.^_`|~0-9A-Za-z-]*'),"
      " sum(type = 'text' AND (instr(value, char(10)) OR instr(value, char(13))))"
      " FROM json_each(?1, '$.headers')";
  sqlite3_stmt *pStmt = bgs__stmt(pEng, zSql);
  const char *zType;
  int rc = BGS_OK;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);

  zType = (const char *)sqlite3_column_text(pStmt, 0);
  if (zType == NULL || strcmp(zType, "text") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "queue must be a string");
    goto done;
  }
  a->zQueue = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));

  zType = (const char *)sqlite3_column_text(pStmt, 2);
  if (zType == NULL || strcmp(zType, "text") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_METHOD, "method must be a string");
    goto done;
  }
  a->zMethod = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
  if (a->zMethod && !method_ok(a->zMethod)) {
    rc = bgs__err(pEng, BGS_INVALID_METHOD, "method '%s' is not allowed", a->zMethod);
    goto done;
  }

  zType = (const char *)sqlite3_column_text(pStmt, 4);
  if (zType == NULL || strcmp(zType, "text") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_URL, "url must be a string");
    goto done;
  }
  a->zUrl = bgs__strdup((const char *)sqlite3_column_text(pStmt, 5));
  if (a->zUrl && !bgs__url_ok(a->zUrl)) {
    rc = bgs__err(pEng, BGS_INVALID_URL, "url must be an absolute http(s) URL");
    goto done;
  }

  zType = (const char *)sqlite3_column_text(pStmt, 6);
  a->ePriority = BGS__PRI_NORMAL;
  if (zType != NULL && strcmp(zType, "null") != 0) {
    a->ePriority = strcmp(zType, "text") == 0
                       ? bgs__priority_from_name((const char *)sqlite3_column_text(pStmt, 7))
                       : -1;
    if (a->ePriority < 0) {
      rc = bgs__err(pEng, BGS_INVALID_PRIORITY, "priority must be critical, high, normal or low");
      goto done;
    }
  }

  zType = (const char *)sqlite3_column_text(pStmt, 8);
  if (zType != NULL && strcmp(zType, "null") != 0) {
    if (strcmp(zType, "text") != 0 || sqlite3_column_bytes(pStmt, 9) < 1 ||
        sqlite3_column_bytes(pStmt, 9) > BGS__MAX_ENTITY) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "entity must be a string of 1 to %d bytes",
                    BGS__MAX_ENTITY);
      goto done;
    }
    a->zEntity = bgs__strdup((const char *)sqlite3_column_text(pStmt, 9));
  }

  zType = (const char *)sqlite3_column_text(pStmt, 10);
  if (zType != NULL && strcmp(zType, "null") != 0 && strcmp(zType, "object") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "headers must be an object of strings");
    goto done;
  }
  sqlite3_reset(pStmt);

  pStmt = bgs__stmt(pEng, zHeaderSql);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_int(pStmt, 1) > 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "header values must be strings");
  } else if (sqlite3_column_int(pStmt, 2) > 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "a header name is not a valid token");
  } else if (sqlite3_column_int(pStmt, 3) > 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "a header value contains CR or LF");
  } else if (sqlite3_column_bytes(pStmt, 0) > BGS__MAX_HEADERS_JSON) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "headers are larger than %d bytes",
                  BGS__MAX_HEADERS_JSON);
  } else {
    a->zHeaders = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
  }
done:
  sqlite3_reset(pStmt);
  if (rc == BGS_OK) rc = bgs__conflict_enqueue_fields(pEng, zJson, &a->zExtra);
  if (rc == BGS_OK) rc = body_ref_read(pEng, zJson, a);
  if (rc == BGS_OK && (a->zQueue == NULL || a->zMethod == NULL || a->zUrl == NULL ||
                       a->zHeaders == NULL)) {
    rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
  }
  return rc;
}

/* A copy of n bytes at z as a string (NULL when out of memory). */
static char *copy_n(const char *z, size_t n) {
  char *p = malloc(n + 1);
  if (p == NULL) return NULL;
  memcpy(p, z, n);
  p[n] = 0;
  return p;
}

/* A header name is a token (RFC 9110), as zHeaderSql's GLOB checks it. */
static int header_name_ok(const char *z, size_t n) {
  size_t i;
  if (n == 0) return 0;
  for (i = 0; i < n; i++) {
    char c = z[i];
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
          strchr("!#$%&'*+.^_`|~-", c) != NULL)) {
      return 0;
    }
  }
  return 1;
}

/* The headers object as zHeaderSql builds it (names lower-case, in their order), from a
   plain object whose values are all strings; NULL when it is not that. Plain strings
   need no escaping, so json_group_object() would write them as they stand. */
static char *headers_plain(const bgs__json_value *pObj) {
  bgs__json_value k, v;
  size_t iPos = 0;
  sqlite3_str *pOut = bgs__str_new(NULL, 256);
  char *z;
  int bFirst = 1;
  sqlite3_str_appendchar(pOut, 1, '{');
  while (bgs__json_member_next(pObj, &iPos, &k, &v)) {
    size_t i;
    if (v.eType != BGS__JSON_TEXT || !header_name_ok(k.z, k.n)) {
      sqlite3_free(sqlite3_str_finish(pOut));
      return NULL;
    }
    if (!bFirst) sqlite3_str_appendchar(pOut, 1, ',');
    bFirst = 0;
    sqlite3_str_appendchar(pOut, 1, '"');
    for (i = 0; i < k.n; i++) {
      char c = k.z[i];
      sqlite3_str_appendchar(pOut, 1, (char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
    }
    sqlite3_str_appendall(pOut, "\":\"");
    sqlite3_str_append(pOut, v.z, (int)v.n);
    sqlite3_str_appendchar(pOut, 1, '"');
  }
  sqlite3_str_appendchar(pOut, 1, '}');
  if (sqlite3_str_length(pOut) > BGS__MAX_HEADERS_JSON) {
    sqlite3_free(sqlite3_str_finish(pOut));
    return NULL;
  }
  z = sqlite3_str_finish(pOut);
  if (z == NULL) return NULL;
  {
    char *zCopy = bgs__strdup(z);
    sqlite3_free(z);
    return zCopy;
  }
}

/* The enqueue fields of a valid item read in C from a plain object (json.c). 1 when a
   holds them; 0 when the item must be read by args_read: it is not plain, it is not
   valid (args_read then says why), or it has fields read there only (conflict fields,
   bodyRef). Gives the same EnqueueArgs as args_read for every item it accepts. */
static int args_read_plain(const char *zJson, EnqueueArgs *a) {
  static const char *const azKey[] = {"queue", "method", "url", "priority", "entity",
                                      "headers", "baseVersion", "baseDocument", "editedAt",
                                      "conflictStrategy", "bodyRef"};
  enum { N_KEY = sizeof(azKey) / sizeof(azKey[0]), N_READ_HERE = 6 };
  bgs__json_value aV[N_KEY];
  size_t i;
  if (!bgs__json_plain_object(zJson, azKey, N_KEY, aV)) return 0;
  for (i = N_READ_HERE; i < N_KEY; i++) {
    if (aV[i].eType != BGS__JSON_ABSENT) return 0;
  }
  if (aV[0].eType != BGS__JSON_TEXT || aV[1].eType != BGS__JSON_TEXT ||
      aV[2].eType != BGS__JSON_TEXT) {
    return 0;
  }
  a->ePriority = BGS__PRI_NORMAL;
  if (aV[3].eType == BGS__JSON_TEXT) {
    char zName[16];
    if (aV[3].n >= sizeof(zName)) return 0;
    memcpy(zName, aV[3].z, aV[3].n);
    zName[aV[3].n] = 0;
    a->ePriority = bgs__priority_from_name(zName);
    if (a->ePriority < 0) return 0;
  } else if (aV[3].eType != BGS__JSON_ABSENT && aV[3].eType != BGS__JSON_NULL) {
    return 0;
  }
  if (aV[4].eType == BGS__JSON_TEXT) {
    if (aV[4].n < 1 || aV[4].n > BGS__MAX_ENTITY) return 0;
  } else if (aV[4].eType != BGS__JSON_ABSENT && aV[4].eType != BGS__JSON_NULL) {
    return 0;
  }
  if (aV[5].eType != BGS__JSON_ABSENT && aV[5].eType != BGS__JSON_OBJECT) return 0;
  a->zQueue = copy_n(aV[0].z, aV[0].n);
  a->zMethod = copy_n(aV[1].z, aV[1].n);
  a->zUrl = copy_n(aV[2].z, aV[2].n);
  if (aV[4].eType == BGS__JSON_TEXT) a->zEntity = copy_n(aV[4].z, aV[4].n);
  a->zHeaders = aV[5].eType == BGS__JSON_OBJECT ? headers_plain(&aV[5]) : bgs__strdup("{}");
  if (a->zMethod != NULL) {
    char *p;
    for (p = a->zMethod; *p; p++) {
      if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 32); /* upper(), ASCII only as SQLite's */
    }
  }
  if (a->zQueue == NULL || a->zMethod == NULL || a->zUrl == NULL || a->zHeaders == NULL ||
      (aV[4].eType == BGS__JSON_TEXT && a->zEntity == NULL) || !method_ok(a->zMethod) ||
      !bgs__url_ok(a->zUrl)) {
    args_free(a);
    memset(a, 0, sizeof(*a));
    return 0;
  }
  return 1;
}

/* Queue limits count unfinished items and their bodies. */
static int limits_check(bgs_engine *pEng, const EnqueueArgs *a, const bgs__queue *pQ,
                        size_t nBody) {
  sqlite3_stmt *pStmt;
  if (pQ->nMaxItems <= 0 && pQ->nMaxBytes <= 0) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "SELECT count(*), coalesce(sum(body_size), 0) FROM items"
                    " WHERE queue = ?1 AND " BGS__UNFINISHED_SQL);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, a->zQueue, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (pQ->nMaxItems > 0 && sqlite3_column_int64(pStmt, 0) >= pQ->nMaxItems) {
    return bgs__err(pEng, BGS_QUEUE_FULL, "queue '%s' holds its limit of %lld items", a->zQueue,
                    (long long)pQ->nMaxItems);
  }
  if (pQ->nMaxBytes > 0 && sqlite3_column_int64(pStmt, 1) + (int64_t)nBody > pQ->nMaxBytes) {
    return bgs__err(pEng, BGS_QUEUE_FULL, "queue '%s' would exceed its limit of %lld bytes",
                    a->zQueue, (long long)pQ->nMaxBytes);
  }
  return BGS_OK;
}

int bgs__ids_remember(bgs_engine *pEng) {
  /* max(id) as a scalar subquery: SQLite reads it off the end of the table, where as the
     FROM clause's only column it scanned the whole table (or its smallest index). */
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "INSERT OR REPLACE INTO meta(key, value)"
                                  " SELECT 'last_item_id', m"
                                  " FROM (SELECT (SELECT max(id) FROM items) AS m)"
                                  " WHERE m > coalesce((SELECT value FROM meta"
                                  "  WHERE key = 'last_item_id'), 0)");
  if (pStmt == NULL) return BGS_ERROR;
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

/* Ids are never reused, even after the newest item was removed (a cancelled create, a
   discarded dead letter, a pruned delivery): the id is part of the idempotency key, and a
   server that saw the old key would take a new request for a replay. The next id is one
   past both the newest row and meta.last_item_id, which every delete that may remove the
   newest row raises first (bgs__ids_remember); an insert writes no meta row. */
static int next_id(bgs_engine *pEng, int64_t *pId) {
  sqlite3_stmt *pStmt;
  /* The engine's own inserts are the only ones (enqueue_insert), and deletes never lower
     the answer (see above): after an insert the next id is known until a rollback. */
  if (pEng->idNext > 0) {
    *pId = pEng->idNext;
    return BGS_OK;
  }
  pStmt = bgs__stmt(pEng,
                                  "SELECT max(coalesce((SELECT max(id) FROM items), 0),"
                                  " coalesce((SELECT value FROM meta WHERE key = 'last_item_id'), 0)) + 1");
  if (pStmt == NULL) return BGS_ERROR;
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *pId = sqlite3_column_int64(pStmt, 0);
  sqlite3_reset(pStmt);
  return BGS_OK;
}

static int enqueue_insert(bgs_engine *pEng, const EnqueueArgs *a, const void *pBody,
                          size_t nBody, bgs_time now, char **pzOut) {
  sqlite3_stmt *pStmt;
  char *zKey, *zOut;
  int64_t id = 0;
  int rc = next_id(pEng, &id);
  if (rc != BGS_OK) return rc;
  /* The key joins the store's random install id and the item id: unique across devices,
     and the same on every attempt because it is stored. */
  zKey = sqlite3_mprintf("%s.%lld", pEng->zInstallId, (long long)id);
  if (zKey == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  pStmt = bgs__stmt(
      pEng,
      "INSERT INTO items(id, key, queue, method, url, headers, body, body_size, priority, entity,"
      " state, head, due_at, created_at, updated_at, extra)"
      " VALUES (?11, ?12, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0,"
      "  ?8 IS NULL OR NOT EXISTS (SELECT 1 FROM items WHERE entity = ?8"
      "   AND " BGS__UNFINISHED_SQL "),"
      "  ?9, ?9, ?9, ?10)");
  if (pStmt == NULL) {
    sqlite3_free(zKey);
    return BGS_ERROR;
  }
  sqlite3_bind_text(pStmt, 1, a->zQueue, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, a->zMethod, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 3, a->zUrl, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 4, a->zHeaders, -1, SQLITE_STATIC);
  if (nBody > 0) sqlite3_bind_blob64(pStmt, 5, pBody, nBody, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 6, a->bRef ? a->nRefSize : (sqlite3_int64)nBody);
  sqlite3_bind_int(pStmt, 7, a->ePriority);
  if (a->zEntity) sqlite3_bind_text(pStmt, 8, a->zEntity, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 9, now);
  if (a->zExtra) sqlite3_bind_text(pStmt, 10, a->zExtra, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 11, id);
  sqlite3_bind_text(pStmt, 12, zKey, -1, SQLITE_STATIC);
  rc = sqlite3_step(pStmt) == SQLITE_DONE ? BGS_OK : bgs__sqlerr(pEng);
  sqlite3_reset(pStmt);
  pEng->idNext = rc == BGS_OK ? id + 1 : 0;
  if (rc == BGS_OK) {
    sqlite3_str *pOut = bgs__str_new(pEng->db, 128);
    sqlite3_str_appendall(pOut, "{\"id\":");
    bgs__json_append_int(pOut, id);
    sqlite3_str_appendall(pOut, ",\"key\":");
    bgs__json_append_string(pOut, zKey);
    sqlite3_str_appendchar(pOut, 1, '}');
    zOut = sqlite3_str_finish(pOut);
    rc = zOut ? bgs__out_text(pEng, (const unsigned char *)zOut, pzOut)
              : bgs__err(pEng, BGS_NOMEM, "out of memory");
    sqlite3_free(zOut);
  }
  sqlite3_free(zKey);
  return rc;
}

int bgs_enqueue(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                bgs_time now, char **pzOut) {
  EnqueueArgs a;
  bgs__queue q;
  int rc = BGS_OK;
  if (pEng == NULL || pzOut == NULL || (pBody == NULL && nBody > 0)) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  memset(&a, 0, sizeof(a));
  if (!args_read_plain(zJson, &a)) {
    rc = bgs__json_object_check(pEng, zJson, "enqueue");
    if (rc == BGS_OK) rc = args_read(pEng, zJson, &a);
  }
  if (rc == BGS_OK) rc = bgs__begin_keep(pEng); /* delivers nothing */
  if (rc == BGS_OK) {
    int bDone = 0;
    size_t nSize = a.bRef ? (size_t)a.nRefSize : nBody; /* what the limits count */
    rc = bgs__queue_load(pEng, a.zQueue, &q);
    if (rc == BGS_OK && a.bRef && nBody > 0) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "an item has a body or a bodyRef, not both");
    }
    if (rc == BGS_OK && (int64_t)nSize > q.nMaxBodyBytes) {
      rc = bgs__err(pEng, BGS_BODY_TOO_LARGE, "body of %lld bytes; queue '%s' allows %lld",
                    (long long)nSize, a.zQueue, (long long)q.nMaxBodyBytes);
    }
    if (rc == BGS_OK && q.bCoalesce && a.zEntity != NULL && !a.bRef) {
      bgs__change c;
      c.zQueue = a.zQueue;
      c.zMethod = a.zMethod;
      c.zUrl = a.zUrl;
      c.zHeaders = a.zHeaders;
      c.zEntity = a.zEntity;
      c.ePriority = a.ePriority;
      c.pBody = pBody;
      c.nBody = nBody;
      rc = bgs__coalesce(pEng, &c, &q, now, pzOut, &bDone);
    }
    if (rc == BGS_OK && !bDone) rc = limits_check(pEng, &a, &q, nSize);
    if (rc == BGS_OK && !bDone) rc = enqueue_insert(pEng, &a, pBody, nBody, now, pzOut);
    rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
    if (rc != BGS_OK) {
      free(*pzOut);
      *pzOut = NULL;
    }
  }
  args_free(&a);
  return rc;
}

/* Wakes items whose backoff ended and items whose lease expired. Mostly there are none,
   and the engine mostly knows it (bgs_engine.tWake); else a look at the first entry of
   each index range, because an UPDATE opens every index of items for writing before it
   finds nothing (two thirds of a claim's statements' time). */
static int claim_wake(bgs_engine *pEng, bgs_time now) {
  sqlite3_stmt *pStmt;
  int bDue, bExpired;
  bgs_time tDue, tLease;
  if (pEng->bWakeKnown && now < pEng->tWake) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "SELECT (SELECT min(due_at) FROM items WHERE state = 1),"
                    " (SELECT min(lease_until) FROM items WHERE state = 2)");
  if (pStmt == NULL) return BGS_ERROR;
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  tDue = sqlite3_column_type(pStmt, 0) == SQLITE_NULL ? INT64_MAX : sqlite3_column_int64(pStmt, 0);
  tLease = sqlite3_column_type(pStmt, 1) == SQLITE_NULL ? INT64_MAX : sqlite3_column_int64(pStmt, 1);
  sqlite3_reset(pStmt);
  bDue = tDue <= now;
  bExpired = tLease <= now;
  /* After the wake-ups below, whatever still waits or is leased ends after now. */
  pEng->bWakeKnown = 1;
  pEng->tWake = bDue || bExpired ? now + 1 : (tDue < tLease ? tDue : tLease);
  if (bDue) {
    pStmt = bgs__stmt(pEng,
                      "UPDATE items SET state = 0, updated_at = ?1"
                      " WHERE state = 1 AND due_at <= ?1");
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_int64(pStmt, 1, now);
    if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  }
  if (!bExpired) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET state = 0, lease_until = NULL, updated_at = ?1"
                    " WHERE state = 2 AND lease_until <= ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, now);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

/* Makes item id a dead letter because it outlived maxAgeMs; its entity moves on. */
static int claim_expire(bgs_engine *pEng, int64_t id, bgs_time now) {
  sqlite3_stmt *pStmt;
  char *zEntity = NULL;
  int rc = bgs__item_entity(pEng, id, &zEntity, NULL);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET state = 5, reason = 'expired', due_at = ?2,"
                    " lease_until = NULL, updated_at = ?2 WHERE id = ?1");
  if (pStmt == NULL) rc = BGS_ERROR;
  else {
    sqlite3_bind_int64(pStmt, 1, id);
    sqlite3_bind_int64(pStmt, 2, now);
    if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
  }
  if (rc == BGS_OK) rc = bgs__entity_advance(pEng, zEntity);
  free(zEntity);
  return rc;
}

/* Text that json_object() writes as it stands between quotes: no quote, backslash or
   control character (SQLite escapes those its own way). */
static int text_plain(const unsigned char *z) {
  if (z == NULL) return 0;
  for (; *z; z++) {
    if (*z < 0x20 || *z == '"' || *z == '\\') return 0;
  }
  return 1;
}

/* Headers that json() gives back unchanged: a plain object (json.c: valid, no escape)
   with no whitespace outside its strings, as the enqueue stored them. */
static int headers_canonical(const char *z) {
  int bInString = 0;
  const char *p;
  if (!bgs__json_plain_object(z, NULL, 0, NULL)) return 0;
  for (p = z; *p; p++) {
    if (*p == '"') bInString = !bInString; /* no escapes in a plain object */
    else if (!bInString && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) return 0;
  }
  return 1;
}

/* A column as JSON: null, or its text quoted (plain here, so nothing is escaped). */
static void append_text(sqlite3_str *pOut, const unsigned char *z) {
  if (z == NULL) sqlite3_str_append(pOut, "null", 4);
  else bgs__json_append_string(pOut, (const char *)z);
}

/* The columns of a picked item that its leased JSON needs, after id and created_at: the
   pick reads them from the row it visits anyway (a second lookup by id after the lease
   cost 1,700 of a claim's 37,000 instructions). */
#define PICK_COLUMNS                                                                   \
  "id, created_at, key, queue, method, url, headers, priority, entity, attempts,"      \
  " body_size, extra IS NULL"

/* Appends to pOut the JSON of the picked row as it will be once leased (attempt + 1,
   lease until tLease), built in C (json_object() and json() on every claim were a fifth
   of the claim's statements). Returns 0, appending nothing, for an item with extra
   fields (base version, body reference) or text that SQLite would escape: that one goes
   through BGS__LEASED_SQL after its lease (leased_json_sql), which writes the same. */
static int leased_json_plain(sqlite3_stmt *pPick, bgs_time tLease, sqlite3_str *pOut) {
  const unsigned char *zEntity = sqlite3_column_text(pPick, 8);
  int ePri = sqlite3_column_int(pPick, 7);
  if (!(sqlite3_column_int(pPick, 11) && text_plain(sqlite3_column_text(pPick, 2)) &&
        text_plain(sqlite3_column_text(pPick, 3)) && text_plain(sqlite3_column_text(pPick, 4)) &&
        text_plain(sqlite3_column_text(pPick, 5)) && (zEntity == NULL || text_plain(zEntity)) &&
        headers_canonical((const char *)sqlite3_column_text(pPick, 6)))) {
    return 0;
  }
  sqlite3_str_appendall(pOut, "{\"id\":");
  bgs__json_append_int(pOut, sqlite3_column_int64(pPick, 0));
  sqlite3_str_appendall(pOut, ",\"key\":");
  append_text(pOut, sqlite3_column_text(pPick, 2));
  sqlite3_str_appendall(pOut, ",\"queue\":");
  append_text(pOut, sqlite3_column_text(pPick, 3));
  sqlite3_str_appendall(pOut, ",\"method\":");
  append_text(pOut, sqlite3_column_text(pPick, 4));
  sqlite3_str_appendall(pOut, ",\"url\":");
  append_text(pOut, sqlite3_column_text(pPick, 5));
  sqlite3_str_appendall(pOut, ",\"headers\":");
  sqlite3_str_appendall(pOut, (const char *)sqlite3_column_text(pPick, 6));
  sqlite3_str_appendall(pOut, ",\"priority\":\"");
  sqlite3_str_appendall(pOut, bgs__priority_name(ePri >= 0 && ePri <= 2 ? ePri : 3));
  sqlite3_str_appendall(pOut, "\",\"entity\":");
  append_text(pOut, zEntity);
  sqlite3_str_appendall(pOut, ",\"attempt\":");
  bgs__json_append_int(pOut, sqlite3_column_int64(pPick, 9) + 1);
  sqlite3_str_appendall(pOut, ",\"bodySize\":");
  bgs__json_append_int(pOut, sqlite3_column_int64(pPick, 10));
  sqlite3_str_appendall(pOut, ",\"leaseUntil\":");
  bgs__json_append_int(pOut, tLease);
  sqlite3_str_appendall(pOut, ",\"baseVersion\":null,\"bodyRef\":null}");
  return 1;
}

/* Appends the leased item id's JSON to pOut, read back by SQLite (see above). */
static int leased_json_sql(bgs_engine *pEng, int64_t id, sqlite3_str *pOut) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, BGS__LEASED_SQL);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  sqlite3_str_appendall(pOut, (const char *)sqlite3_column_text(pStmt, 0));
  sqlite3_reset(pStmt);
  return BGS_OK;
}

/* Claims as bgs__claim_items does; with idOnly > 0 only that item, if it is claimable. */
static int claim_items(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now,
                       sqlite3_str *pOut, int64_t *aIdOut, int *pn, int64_t idOnly) {
  sqlite3_stmt *pPick, *pLease;
  sqlite3_str *pPicked; /* the picked items' JSON as leased, one after another */
  bgs__queue q;
  bgs_time tLease = now + pEng->cfg.nLeaseMs;
  int64_t *aId, *aCreated;
  int *aOff; /* item i's JSON is pPicked's [aOff[i], aOff[i+1]); empty: leased_json_sql */
  int n = 0, rc;
  *pn = 0;
  rc = bgs__queue_load(pEng, zQueue, &q);
  if (rc != BGS_OK) return rc;
  rc = claim_wake(pEng, now);
  if (rc != BGS_OK) return rc;
  aId = malloc((sizeof(*aId) * 2 + sizeof(*aOff)) * (size_t)nMax + sizeof(*aOff));
  if (aId == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  aCreated = aId + nMax;
  aOff = (int *)(aCreated + nMax);
  pPicked = bgs__str_new(pEng->db, nMax == 1 ? 512 : 4096);
  /* Rounds: an expired item makes room (and may make a new entity head), so pick again
     until nMax items are leased or a round expired nothing. */
  while (rc == BGS_OK && n < nMax) {
    int nPick = 0, nExpired = 0, i;
    const char *zPicked;
    pPick = bgs__stmt(pEng,
                      idOnly > 0
                          ? "SELECT " PICK_COLUMNS " FROM items WHERE queue = ?1 AND state = 0"
                            " AND head = 1 AND id = ?3 LIMIT ?2"
                          : "SELECT " PICK_COLUMNS " FROM items WHERE queue = ?1 AND state = 0"
                            " AND head = 1 ORDER BY priority, id LIMIT ?2");
    if (pPick == NULL) {
      rc = BGS_ERROR;
      break;
    }
    sqlite3_bind_text(pPick, 1, zQueue, -1, SQLITE_STATIC);
    sqlite3_bind_int(pPick, 2, nMax - n);
    if (idOnly > 0) sqlite3_bind_int64(pPick, 3, idOnly);
    sqlite3_str_truncate(pPicked, 0);
    while (nPick < nMax - n && sqlite3_step(pPick) == SQLITE_ROW) {
      aId[nPick] = sqlite3_column_int64(pPick, 0);
      aCreated[nPick] = sqlite3_column_int64(pPick, 1);
      aOff[nPick] = sqlite3_str_length(pPicked);
      leased_json_plain(pPick, tLease, pPicked);
      nPick++;
    }
    aOff[nPick] = sqlite3_str_length(pPicked);
    sqlite3_reset(pPick);
    if (sqlite3_str_errcode(pPicked) != SQLITE_OK) {
      rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
      break;
    }
    if (nPick == 0) break;
    zPicked = sqlite3_str_value(pPicked);
    for (i = 0; i < nPick && rc == BGS_OK; i++) {
      if (q.nMaxAgeMs > 0 && now > aCreated[i] + q.nMaxAgeMs) {
        rc = claim_expire(pEng, aId[i], now);
        nExpired++;
        continue;
      }
      pLease = bgs__stmt(pEng,
                         "UPDATE items SET state = 2, lease_until = ?2, attempts = attempts + 1,"
                         " updated_at = ?3 WHERE id = ?1");
      if (pLease == NULL) {
        rc = BGS_ERROR;
        break;
      }
      sqlite3_bind_int64(pLease, 1, aId[i]);
      sqlite3_bind_int64(pLease, 2, tLease);
      if (tLease < pEng->tWake) pEng->tWake = tLease;
      sqlite3_bind_int64(pLease, 3, now);
      if (sqlite3_step(pLease) != SQLITE_DONE) {
        rc = bgs__sqlerr(pEng);
        break;
      }
      if (n > 0) sqlite3_str_appendchar(pOut, 1, ',');
      if (aOff[i + 1] > aOff[i]) {
        sqlite3_str_append(pOut, zPicked + aOff[i], aOff[i + 1] - aOff[i]);
      } else {
        rc = leased_json_sql(pEng, aId[i], pOut);
        if (rc != BGS_OK) break;
      }
      if (aIdOut) aIdOut[n] = aId[i];
      n++;
    }
    if (nExpired == 0) break;
  }
  sqlite3_free(sqlite3_str_finish(pPicked));
  free(aId);
  *pn = n;
  return rc;
}

int bgs__claim_items(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now,
                     sqlite3_str *pOut, int64_t *aIdOut, int *pn) {
  return claim_items(pEng, zQueue, nMax, now, pOut, aIdOut, pn, 0);
}

/* bgs_claim (idOnly 0), and bgs_claim_item (idOnly: its id, -1 for one that is not). */
static int claim_json(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now,
                      int64_t idOnly, char **pzOut) {
  sqlite3_str *pOut;
  char *z;
  int rc, n = 0;
  if (pEng == NULL || zQueue == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  if (nMax < 1 || nMax > 10000) {
    return bgs__err(pEng, BGS_INVALID_ARGUMENT, "max must be between 1 and 10000");
  }
  if (idOnly < 0) return bgs__err(pEng, BGS_INVALID_ARGUMENT, "id must be a positive integer");
  pOut = bgs__str_new(pEng->db, 512);
  sqlite3_str_appendchar(pOut, 1, '[');
  rc = bgs__begin_keep(pEng); /* delivers nothing */
  if (rc == BGS_OK) {
    rc = claim_items(pEng, zQueue, nMax, now, pOut, NULL, &n, idOnly);
    rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
  }
  sqlite3_str_appendchar(pOut, 1, ']');
  z = sqlite3_str_finish(pOut);
  if (rc == BGS_OK) {
    if (z == NULL) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    else rc = bgs__out_text(pEng, (const unsigned char *)z, pzOut);
  }
  sqlite3_free(z);
  return rc;
}

int bgs_claim(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now, char **pzOut) {
  return claim_json(pEng, zQueue, nMax, now, 0, pzOut);
}

int bgs_claim_item(bgs_engine *pEng, const char *zQueue, int64_t id, bgs_time now,
                   char **pzOut) {
  return claim_json(pEng, zQueue, 1, now, id < 1 ? -1 : id, pzOut);
}

int bgs_body(bgs_engine *pEng, int64_t id, unsigned char **ppBody, size_t *pnBody) {
  sqlite3_stmt *pStmt;
  int n;
  if (pEng == NULL || ppBody == NULL || pnBody == NULL) return BGS_MISUSE;
  *ppBody = NULL;
  *pnBody = 0;
  bgs__enter(pEng, -1);
  pStmt = bgs__stmt(pEng, "SELECT body FROM items WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) {
    sqlite3_reset(pStmt);
    return bgs__err(pEng, BGS_NOT_FOUND, "no item %lld", (long long)id);
  }
  n = sqlite3_column_bytes(pStmt, 0);
  if (n > 0) {
    *ppBody = malloc((size_t)n);
    if (*ppBody == NULL) {
      sqlite3_reset(pStmt);
      return bgs__err(pEng, BGS_NOMEM, "out of memory");
    }
    memcpy(*ppBody, sqlite3_column_blob(pStmt, 0), (size_t)n);
    *pnBody = (size_t)n;
  }
  sqlite3_reset(pStmt);
  return BGS_OK;
}
