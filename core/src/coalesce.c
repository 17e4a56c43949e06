/*
 * coalesce.c -- merging of changes to one entity before they are sent (queues with
 * "coalesce": true). The rules are the contract in bgsync.h (bgs_enqueue); in short:
 *
 *   tail PATCH u  + PATCH u   -> one PATCH: the two merge patches composed (RFC 7396)
 *   tail PUT/PATCH u + PUT u  -> the PUT (replaces what was before it)
 *   tail POST     + PATCH     -> the POST with the patch applied to its body
 *   tail POST     + PUT       -> the POST with the PUT's body
 *   POST ... (all) + DELETE   -> nothing: the create and everything after it is removed
 *
 * Invariants: only items with state = pending, attempts = 0 and no outcome ever reported
 * are touched (never one that may have reached the server, also after a dead-letter
 * retry reset its attempts); the merged item keeps its id, key, created time and
 * place in line; the queue's limits hold after a merge (otherwise the change is simply
 * appended, and the usual limit checks decide).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The entity's tail: its newest unfinished item, and facts about its whole line. */
typedef struct Tail {
  int64_t id;         /* the newest unfinished item (0 = none) */
  int bFresh;         /* it is in this queue, pending and never attempted */
  char *zMethod;
  char *zUrl;
  int64_t nSize;      /* its body size */
  int nLine;          /* unfinished items of the entity */
  int bAllFresh;      /* every one of them is fresh (same queue, pending, attempts = 0) */
  int bFirstIsCreate; /* the oldest of them is a POST */
} Tail;

static int tail_read(bgs_engine *pEng, const bgs__change *c, Tail *t) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  /* Fresh: never handed out, no outcome ever (a dead letter
                                     sent again has attempts = 0 but was tried: dead.c marks
                                     it extra.sent). */
                                  "SELECT id, queue = ?2 AND state = 0 AND attempts = 0"
                                  " AND last_status IS NULL"
                                  /* an external body (queue.c, bodyRef) is not here to merge */
                                  " AND json_extract(extra, '$.bodyRef') IS NULL"
                                  " AND json_extract(extra, '$.sent') IS NULL,"
                                  " method, url, body_size FROM items"
                                  " WHERE entity = ?1 AND " BGS__UNFINISHED_SQL
                                  " ORDER BY id");
  int rc = BGS_OK, e;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, c->zEntity, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, c->zQueue, -1, SQLITE_STATIC);
  t->bAllFresh = 1;
  for (;;) {
    const char *zMethod;
    e = sqlite3_step(pStmt);
    if (e != SQLITE_ROW) break;
    zMethod = (const char *)sqlite3_column_text(pStmt, 2);
    if (t->nLine == 0) t->bFirstIsCreate = zMethod != NULL && strcmp(zMethod, "POST") == 0;
    t->nLine++;
    t->id = sqlite3_column_int64(pStmt, 0);
    t->bFresh = sqlite3_column_int(pStmt, 1);
    if (!t->bFresh) t->bAllFresh = 0;
    free(t->zMethod);
    free(t->zUrl);
    t->zMethod = bgs__strdup(zMethod);
    t->zUrl = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
    t->nSize = sqlite3_column_int64(pStmt, 4);
    if (t->zMethod == NULL || t->zUrl == NULL) {
      rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
      break;
    }
  }
  if (rc == BGS_OK && e != SQLITE_DONE) rc = bgs__sqlerr(pEng);
  sqlite3_reset(pStmt);
  return rc;
}

/* create + ... + DELETE: the whole line goes, the DELETE is not stored. */
static int cancel_line(bgs_engine *pEng, const bgs__change *c, char **pzOut) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT json_object('id', NULL, 'key', NULL, 'cancelled',"
                                  "  json_group_array(id)) FROM (SELECT id FROM items"
                                  "  WHERE entity = ?1 AND " BGS__UNFINISHED_SQL
                                  "  ORDER BY id)");
  int rc;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, c->zEntity, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  if (rc == BGS_OK) rc = bgs__ids_remember(pEng); /* the create may be the newest item */
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "DELETE FROM items WHERE entity = ?1 AND " BGS__UNFINISHED_SQL);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, c->zEntity, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

/*
 * The merged body (and headers) for the tail and c, computed by SQLite:
 *  eHow 1 (PATCH + PATCH): the composition of two merge patches. json_patch applies the
 *    second to the first, which drops members whose value is null; but in a patch null
 *    means "delete", so every null of the second patch is set back afterwards (its parents
 *    are objects of the second patch, hence present in the result);
 *  eHow 2 (POST + PATCH): the patch applied to the created document;
 *  eHow 3 (replace the body with c's).
 * Both JSON bodies must be objects for 1 and 2; otherwise *pbOk is 0 and nothing merges.
 */
static int merge_bodies(bgs_engine *pEng, int64_t idTail, const bgs__change *c, int eHow,
                        sqlite3_str *pBody, int *pbOk) {
  static const char zSql[] =
      "WITH RECURSIVE"
      " t(doc) AS (SELECT CAST(body AS TEXT) FROM items WHERE id = ?1),"
      /* CASE, not AND: json_type() raises an error on text that is not JSON. */
      " ok(v) AS (SELECT CASE WHEN ?3 = 3 THEN 1"
      "   WHEN json_valid((SELECT doc FROM t)) AND json_valid(CAST(?2 AS TEXT))"
      "   THEN json_type((SELECT doc FROM t)) = 'object' AND json_type(CAST(?2 AS TEXT)) = 'object'"
      "   ELSE 0 END),"
      " nulls(n, path) AS (SELECT row_number() OVER (ORDER BY id), fullkey"
      "   FROM json_tree(CASE WHEN ?3 = 1 AND (SELECT v FROM ok) THEN CAST(?2 AS TEXT) ELSE '{}' END)"
      "   WHERE type = 'null'),"
      " r(i, doc) AS ("
      "   SELECT 0, CASE WHEN ?3 = 3 THEN NULL"
      "     WHEN (SELECT v FROM ok) THEN json_patch((SELECT doc FROM t), CAST(?2 AS TEXT)) END"
      "   UNION ALL"
      "   SELECT i + 1, json_set(doc, (SELECT path FROM nulls WHERE n = i + 1), NULL)"
      "   FROM r WHERE i < (SELECT count(*) FROM nulls))"
      " SELECT (SELECT v FROM ok), (SELECT doc FROM r ORDER BY i DESC LIMIT 1)";
  sqlite3_stmt *pStmt = bgs__stmt(pEng, zSql);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, idTail);
  if (c->nBody > 0) sqlite3_bind_blob64(pStmt, 2, c->pBody, c->nBody, SQLITE_STATIC);
  else sqlite3_bind_text(pStmt, 2, "", 0, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 3, eHow);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *pbOk = sqlite3_column_int(pStmt, 0);
  if (*pbOk && eHow != 3) {
    sqlite3_str_appendall(pBody, (const char *)sqlite3_column_text(pStmt, 1));
  } else if (*pbOk && c->nBody > 0) {
    sqlite3_str_append(pBody, (const char *)c->pBody, (int)c->nBody);
  }
  sqlite3_reset(pStmt);
  return BGS_OK;
}

/* Would the queue still be within its limits if the tail's body became nNew bytes? */
static int merge_fits(bgs_engine *pEng, const bgs__change *c, const bgs__queue *pQ,
                      const Tail *t, int64_t nNew, int *pbFits) {
  sqlite3_stmt *pStmt;
  *pbFits = nNew <= pQ->nMaxBodyBytes;
  if (!*pbFits || pQ->nMaxBytes <= 0) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "SELECT coalesce(sum(body_size), 0) FROM items"
                    " WHERE queue = ?1 AND " BGS__UNFINISHED_SQL);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, c->zQueue, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *pbFits = sqlite3_column_int64(pStmt, 0) - t->nSize + nNew <= pQ->nMaxBytes;
  sqlite3_reset(pStmt);
  return BGS_OK;
}

/* Rewrites the tail: eHow as in merge_bodies; bTakeRequest also takes c's method, URL
   and headers (PUT replacing), bMergeHeaders merges c's headers over the tail's. */
static int rewrite_tail(bgs_engine *pEng, const Tail *t, const bgs__change *c,
                        const char *pBody, int64_t nBody, int bTakeRequest, int bMergeHeaders,
                        bgs_time now, char **pzOut) {
  int rc;
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "UPDATE items SET body = ?2, body_size = ?3, priority = min(priority, ?4), updated_at = ?5,"
      " method = CASE WHEN ?6 THEN ?7 ELSE method END,"
      " url = CASE WHEN ?6 THEN ?8 ELSE url END,"
      " headers = CASE WHEN ?6 THEN ?9 WHEN ?10 THEN json_patch(headers, ?9) ELSE headers END"
      " WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, t->id);
  if (nBody > 0) sqlite3_bind_blob64(pStmt, 2, pBody, (sqlite3_uint64)nBody, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 3, nBody);
  sqlite3_bind_int(pStmt, 4, c->ePriority);
  sqlite3_bind_int64(pStmt, 5, now);
  sqlite3_bind_int(pStmt, 6, bTakeRequest);
  sqlite3_bind_text(pStmt, 7, c->zMethod, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 8, c->zUrl, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 9, c->zHeaders, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 10, bMergeHeaders);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  /* The answer, read after the change (this build of SQLite has no RETURNING). */
  pStmt = bgs__stmt(pEng,
                    "SELECT json_object('id', id, 'key', key, 'coalesced', json('true'))"
                    " FROM items WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, t->id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  return rc;
}

int bgs__coalesce(bgs_engine *pEng, const bgs__change *c, const bgs__queue *pQ, bgs_time now,
                  char **pzOut, int *pbDone) {
  Tail t;
  int rc, eHow = 0, bTake = 0, bMergeHeaders = 0;
  *pbDone = 0;
  memset(&t, 0, sizeof(t));
  rc = tail_read(pEng, c, &t);
  if (rc != BGS_OK || t.nLine == 0) goto done;

  if (strcmp(c->zMethod, "DELETE") == 0) {
    if (t.bAllFresh && t.bFirstIsCreate) {
      rc = cancel_line(pEng, c, pzOut);
      if (rc == BGS_OK) *pbDone = 1;
    }
    goto done;
  }
  if (!t.bFresh) goto done;
  if (strcmp(c->zMethod, "PATCH") == 0) {
    if (strcmp(t.zMethod, "PATCH") == 0 && strcmp(t.zUrl, c->zUrl) == 0) {
      eHow = 1;
      bMergeHeaders = 1;
    } else if (strcmp(t.zMethod, "POST") == 0) {
      eHow = 2;
    }
  } else if (strcmp(c->zMethod, "PUT") == 0) {
    if ((strcmp(t.zMethod, "PUT") == 0 || strcmp(t.zMethod, "PATCH") == 0) &&
        strcmp(t.zUrl, c->zUrl) == 0) {
      eHow = 3;
      bTake = 1;
    } else if (strcmp(t.zMethod, "POST") == 0) {
      eHow = 3;
    }
  }
  if (eHow != 0) {
    sqlite3_str *pBody = sqlite3_str_new(pEng->db);
    int bOk = 0, bFits = 0;
    char *zBody;
    int64_t nBody;
    rc = merge_bodies(pEng, t.id, c, eHow, pBody, &bOk);
    nBody = sqlite3_str_length(pBody);
    if (rc == BGS_OK && sqlite3_str_errcode(pBody) != SQLITE_OK) {
      rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    }
    if (rc == BGS_OK && bOk) rc = merge_fits(pEng, c, pQ, &t, nBody, &bFits);
    zBody = sqlite3_str_finish(pBody);
    if (rc == BGS_OK && bOk && bFits) {
      rc = rewrite_tail(pEng, &t, c, zBody, nBody, bTake, bMergeHeaders, now, pzOut);
      if (rc == BGS_OK) *pbDone = 1;
    }
    sqlite3_free(zBody);
  }
done:
  free(t.zMethod);
  free(t.zUrl);
  return rc;
}
