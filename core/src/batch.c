/*
 * batch.c -- many items in one request, for queues with a batch endpoint
 * ("batch": {"url", "maxItems"}). The wire protocol is documented in bgsync.h
 * (bgs_claim_batch, bgs_batch_outcome): a JSON request of items, a JSON response of
 * per-item results matched by idempotency key.
 *
 * Invariants: a batch claim is an ordinary claim (same order, entity heads, leases,
 * attempt counts), so the items' outcomes go through the same rules as single ones
 * (outcome.c). A batch that failed as a whole -- a non-2xx status, a network error, a
 * response that is not the protocol -- is a failed attempt of every item in it (401
 * excepted: every item then waits for credentials); an item the response does not
 * mention is retried. Nothing the server sends can make the engine fail the call.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char azB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Appends the standard base64 (RFC 4648, padded) of p[0..n) to pOut. */
static void base64_append(sqlite3_str *pOut, const unsigned char *p, size_t n) {
  size_t i;
  char a[4];
  for (i = 0; i + 2 < n; i += 3) {
    a[0] = azB64[p[i] >> 2];
    a[1] = azB64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
    a[2] = azB64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
    a[3] = azB64[p[i + 2] & 63];
    sqlite3_str_append(pOut, a, 4);
  }
  if (n - i == 1) {
    a[0] = azB64[p[i] >> 2];
    a[1] = azB64[(p[i] & 3) << 4];
    a[2] = a[3] = '=';
    sqlite3_str_append(pOut, a, 4);
  } else if (n - i == 2) {
    a[0] = azB64[p[i] >> 2];
    a[1] = azB64[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
    a[2] = azB64[(p[i + 1] & 15) << 2];
    a[3] = '=';
    sqlite3_str_append(pOut, a, 4);
  }
}

/* 1 when p[0..n) is well-formed UTF-8 (no overlongs, surrogates or values past
   U+10FFFF) without NUL bytes: such a body travels as a JSON string. */
static int text_ok(const unsigned char *p, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t k, nMore;
    unsigned cp, min;
    if (c == 0) return 0;
    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xE0) == 0xC0) {
      nMore = 1;
      cp = c & 0x1F;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      nMore = 2;
      cp = c & 0x0F;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      nMore = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else {
      return 0;
    }
    if (i + nMore >= n) return 0; /* truncated sequence */
    for (k = 1; k <= nMore; k++) {
      if ((p[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += nMore + 1;
  }
  return 1;
}

/* Appends one item of the request: {"key","method","url","headers","body"|"bodyBase64"}. */
static int request_item(bgs_engine *pEng, int64_t id, sqlite3_str *pReq) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT json_object('key', key, 'method', method, 'url', url,"
                                  " 'headers', json(headers)), body FROM items WHERE id = ?1");
  const unsigned char *pBody;
  size_t nBody;
  const char *zObj;
  size_t nObj;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zObj = (const char *)sqlite3_column_text(pStmt, 0);
  nObj = (size_t)sqlite3_column_bytes(pStmt, 0);
  pBody = sqlite3_column_blob(pStmt, 1);
  nBody = (size_t)sqlite3_column_bytes(pStmt, 1);
  /* The object without its closing brace, then the body member. */
  sqlite3_str_append(pReq, zObj, (int)nObj - 1);
  if (nBody > 0 && text_ok(pBody, nBody)) {
    sqlite3_stmt *pQuote = bgs__stmt(pEng, "SELECT json_quote(CAST(?1 AS TEXT))");
    if (pQuote == NULL) {
      sqlite3_reset(pStmt);
      return BGS_ERROR;
    }
    sqlite3_bind_blob64(pQuote, 1, pBody, nBody, SQLITE_STATIC);
    if (sqlite3_step(pQuote) != SQLITE_ROW) {
      sqlite3_reset(pStmt);
      return bgs__sqlerr(pEng);
    }
    sqlite3_str_appendall(pReq, ",\"body\":");
    sqlite3_str_appendall(pReq, (const char *)sqlite3_column_text(pQuote, 0));
    sqlite3_reset(pQuote);
  } else if (nBody > 0) {
    sqlite3_str_appendall(pReq, ",\"bodyBase64\":\"");
    base64_append(pReq, pBody, nBody);
    sqlite3_str_appendchar(pReq, 1, '"');
  }
  sqlite3_str_appendchar(pReq, 1, '}');
  sqlite3_reset(pStmt);
  return BGS_OK;
}

static int batch_url(bgs_engine *pEng, const char *zQueue, sqlite3_str *pOut) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT json_quote(json_extract(extra, '$.batch.url'))"
                                  " FROM queues WHERE name = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  sqlite3_str_appendall(pOut, (const char *)sqlite3_column_text(pStmt, 0));
  sqlite3_reset(pStmt);
  return BGS_OK;
}

static int claim_batch(bgs_engine *pEng, const char *zQueue, bgs_time now, sqlite3_str *pOut,
                       sqlite3_str *pReq, int *pn) {
  bgs__queue q;
  int64_t *aId;
  int i, rc = bgs__queue_load(pEng, zQueue, &q);
  if (rc != BGS_OK) return rc;
  if (q.nBatchMax < 1) {
    return bgs__err(pEng, BGS_NO_BATCH, "queue '%s' has no batch endpoint", zQueue);
  }
  aId = malloc(sizeof(*aId) * (size_t)q.nBatchMax);
  if (aId == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  sqlite3_str_appendall(pOut, "{\"method\":\"POST\",\"url\":");
  rc = batch_url(pEng, zQueue, pOut);
  if (rc == BGS_OK) {
    sqlite3_str_appendall(pOut, ",\"headers\":{\"content-type\":\"application/json\"},\"items\":[");
    rc = bgs__claim_items(pEng, zQueue, q.nBatchMax, now, pOut, aId, pn);
    sqlite3_str_appendall(pOut, "]}");
  }
  sqlite3_str_appendall(pReq, "{\"items\":[");
  for (i = 0; rc == BGS_OK && i < *pn; i++) {
    if (i > 0) sqlite3_str_appendchar(pReq, 1, ',');
    rc = request_item(pEng, aId[i], pReq);
  }
  sqlite3_str_appendall(pReq, "]}");
  free(aId);
  return rc;
}

int bgs_claim_batch(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut,
                    unsigned char **ppBody, size_t *pnBody) {
  sqlite3_str *pOut, *pReq;
  char *zOut, *zReq;
  int rc, n = 0, nReq;
  if (pEng == NULL || zQueue == NULL || pzOut == NULL || ppBody == NULL || pnBody == NULL) {
    return BGS_MISUSE;
  }
  *pzOut = NULL;
  *ppBody = NULL;
  *pnBody = 0;
  bgs__enter(pEng, now);
  pOut = sqlite3_str_new(pEng->db);
  pReq = sqlite3_str_new(pEng->db);
  rc = bgs__begin(pEng);
  if (rc == BGS_OK) {
    rc = claim_batch(pEng, zQueue, now, pOut, pReq, &n);
    if (rc == BGS_OK && (sqlite3_str_errcode(pOut) || sqlite3_str_errcode(pReq))) {
      rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    }
    rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
  }
  nReq = sqlite3_str_length(pReq);
  zOut = sqlite3_str_finish(pOut);
  zReq = sqlite3_str_finish(pReq);
  if (rc == BGS_OK) rc = bgs__out_text(pEng, (const unsigned char *)zOut, pzOut);
  if (rc == BGS_OK && n > 0) {
    *ppBody = malloc((size_t)nReq);
    if (*ppBody == NULL) {
      free(*pzOut);
      *pzOut = NULL;
      rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    } else {
      memcpy(*ppBody, zReq, (size_t)nReq);
      *pnBody = (size_t)nReq;
    }
  }
  sqlite3_free(zOut);
  sqlite3_free(zReq);
  return rc;
}

/* ---- outcomes ---- */

typedef struct BatchArgs {
  int nItem;
  int64_t *aId, *aAttempt;
  int iStatus;
  char *zRetryAfter;
} BatchArgs;

static int batch_args_read(bgs_engine *pEng, const char *zJson, BatchArgs *a) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT json_type(?1, '$.items'), json_array_length(?1, '$.items'),"
                                  " json_type(?1, '$.status'), json_extract(?1, '$.status'),"
                                  " json_type(?1, '$.headers'),"
                                  " (SELECT value FROM json_each(?1, '$.headers')"
                                  "   WHERE lower(key) = 'retry-after' AND type = 'text')");
  const char *zType;
  int rc = BGS_OK, e;
  int64_t nItem;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zType = (const char *)sqlite3_column_text(pStmt, 0);
  nItem = sqlite3_column_int64(pStmt, 1);
  if (zType == NULL || strcmp(zType, "array") != 0 || nItem < 1 || nItem > BGS__BATCH_MAX) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "items must be an array of 1 to %d {id, attempt}",
                  BGS__BATCH_MAX);
  }
  zType = (const char *)sqlite3_column_text(pStmt, 2);
  if (rc == BGS_OK && (zType == NULL || strcmp(zType, "integer") != 0 ||
                       sqlite3_column_int64(pStmt, 3) < 0 || sqlite3_column_int64(pStmt, 3) > 999)) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "status must be an integer from 0 to 999");
  }
  zType = (const char *)sqlite3_column_text(pStmt, 4);
  if (rc == BGS_OK && zType != NULL && strcmp(zType, "object") != 0 && strcmp(zType, "null") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "headers must be an object");
  }
  if (rc == BGS_OK) {
    a->iStatus = sqlite3_column_int(pStmt, 3);
    if (sqlite3_column_type(pStmt, 5) != SQLITE_NULL) {
      a->zRetryAfter = bgs__strdup((const char *)sqlite3_column_text(pStmt, 5));
    }
    a->aId = malloc(sizeof(int64_t) * (size_t)nItem * 2);
    if (a->aId == NULL) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    else a->aAttempt = a->aId + nItem;
  }
  sqlite3_reset(pStmt);
  if (rc != BGS_OK) return rc;

  pStmt = bgs__stmt(pEng,
                    "SELECT json_type(value, '$.id') = 'integer' AND json_type(value, '$.attempt') = 'integer',"
                    " json_extract(value, '$.id'), json_extract(value, '$.attempt')"
                    " FROM json_each(?1, '$.items') ORDER BY key");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  for (;;) {
    e = sqlite3_step(pStmt);
    if (e != SQLITE_ROW) break;
    if (!sqlite3_column_int(pStmt, 0) || a->nItem >= nItem) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "each item must be {\"id\": integer, \"attempt\": integer}");
      break;
    }
    a->aId[a->nItem] = sqlite3_column_int64(pStmt, 1);
    a->aAttempt[a->nItem] = sqlite3_column_int64(pStmt, 2);
    a->nItem++;
  }
  if (rc == BGS_OK && e != SQLITE_DONE) rc = bgs__sqlerr(pEng);
  sqlite3_reset(pStmt);
  return rc;
}

/* The response's form: 1 when it is {"results": [...]}. The body is bound as text. */
static int response_ok(bgs_engine *pEng, const void *pBody, size_t nBody, int *pbOk) {
  sqlite3_stmt *pStmt;
  *pbOk = 0;
  if (nBody == 0) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    /* CASE, not AND: json_type() raises an error on text that is not JSON. */
                    "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object'"
                    " AND json_type(?1, '$.results') = 'array' ELSE 0 END");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text64(pStmt, 1, (const char *)pBody, nBody, SQLITE_STATIC, SQLITE_UTF8);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *pbOk = sqlite3_column_int(pStmt, 0);
  sqlite3_reset(pStmt);
  return BGS_OK;
}

/* Applies one item's report and appends its decision (or the error that kept it out). */
static int apply_one(bgs_engine *pEng, const bgs__report *r, const char *pBody, size_t nBody,
                     bgs_time now, sqlite3_str *pOut) {
  char *zOne = NULL;
  int rc = bgs__outcome_apply(pEng, r, pBody, nBody, now, &zOne);
  if (rc == BGS_OK) {
    sqlite3_str_appendall(pOut, zOne);
  } else if (rc == BGS_STALE || rc == BGS_NOT_FOUND) {
    sqlite3_str_appendf(pOut, "{\"id\":%lld,\"error\":\"%s\"}", (long long)r->id, bgs_errname(rc));
    rc = BGS_OK;
  }
  free(zOne);
  return rc;
}

/* The result for item id in the response: its status (-1 when absent, -2 when not a
   valid status), Retry-After and body text. */
static int result_find(bgs_engine *pEng, const void *pResp, size_t nResp, int64_t id,
                       int *piStatus, char **pzRetryAfter, char **pzBody) {
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "SELECT CASE WHEN json_type(r.value, '$.status') = 'integer'"
      "  AND json_extract(r.value, '$.status') BETWEEN 0 AND 999"
      "  THEN json_extract(r.value, '$.status') ELSE -2 END,"
      " (SELECT h.value FROM json_each(r.value, '$.headers') AS h"
      "   WHERE lower(h.key) = 'retry-after' AND h.type = 'text'),"
      " CASE WHEN json_type(r.value, '$.body') = 'text' THEN json_extract(r.value, '$.body') END"
      " FROM json_each(?1, '$.results') AS r"
      /* CASE guards: r.value of a string result is not JSON text. */
      " WHERE CASE WHEN r.type = 'object' THEN"
      "   json_extract(r.value, '$.key') = (SELECT key FROM items WHERE id = ?2)"
      "   AND coalesce(json_type(r.value, '$.headers'), 'object') = 'object' ELSE 0 END"
      " ORDER BY r.key LIMIT 1");
  *piStatus = -1;
  *pzRetryAfter = NULL;
  *pzBody = NULL;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text64(pStmt, 1, (const char *)pResp, nResp, SQLITE_STATIC, SQLITE_UTF8);
  sqlite3_bind_int64(pStmt, 2, id);
  if (sqlite3_step(pStmt) == SQLITE_ROW) {
    *piStatus = sqlite3_column_int(pStmt, 0);
    if (sqlite3_column_type(pStmt, 1) != SQLITE_NULL) {
      *pzRetryAfter = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
    }
    if (sqlite3_column_type(pStmt, 2) != SQLITE_NULL) {
      *pzBody = bgs__strdup((const char *)sqlite3_column_text(pStmt, 2));
    }
  }
  sqlite3_reset(pStmt);
  return BGS_OK;
}

static int batch_apply(bgs_engine *pEng, const BatchArgs *a, const void *pResp, size_t nResp,
                       bgs_time now, sqlite3_str *pOut) {
  int bSuccess = a->iStatus >= 200 && a->iStatus <= 299;
  int bParsed = 0, i, rc = BGS_OK;
  const char *zVerdict;
  if (bSuccess) rc = response_ok(pEng, pResp, nResp, &bParsed);
  if (rc != BGS_OK) return rc;
  zVerdict = !bSuccess ? "failed" : bParsed ? "ok" : "bad-response";
  sqlite3_str_appendf(pOut, "{\"batch\":\"%s\",\"results\":[", zVerdict);
  for (i = 0; i < a->nItem && rc == BGS_OK; i++) {
    bgs__report r;
    char *zRetryAfter = NULL, *zBody = NULL;
    memset(&r, 0, sizeof(r));
    r.id = a->aId[i];
    r.nAttempt = a->aAttempt[i];
    if (!bSuccess || !bParsed) {
      /* The batch failed as a whole: a failed attempt of each item. */
      r.iStatus = a->iStatus;
      r.zRetryAfter = a->zRetryAfter;
      r.bRetry = 1;
      r.zReason = bSuccess ? "bad-batch-response" : "batch-failed";
    } else {
      int iStatus;
      rc = result_find(pEng, pResp, nResp, r.id, &iStatus, &zRetryAfter, &zBody);
      if (rc != BGS_OK) break;
      if (iStatus < 0) {
        r.iStatus = 0;
        r.bRetry = 1;
        r.zReason = iStatus == -1 ? "missing-from-batch" : "bad-batch-result";
      } else {
        r.iStatus = iStatus;
        r.zRetryAfter = zRetryAfter;
      }
    }
    if (i > 0) sqlite3_str_appendchar(pOut, 1, ',');
    rc = apply_one(pEng, &r, zBody, zBody ? strlen(zBody) : 0, now, pOut);
    free(zRetryAfter);
    free(zBody);
  }
  sqlite3_str_appendall(pOut, "]}");
  return rc;
}

int bgs_batch_outcome(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                      bgs_time now, char **pzOut) {
  BatchArgs a;
  sqlite3_str *pOut;
  char *z;
  int rc;
  if (pEng == NULL || pzOut == NULL || (pBody == NULL && nBody > 0)) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  memset(&a, 0, sizeof(a));
  rc = bgs__json_object_check(pEng, zJson, "batch outcome");
  if (rc == BGS_OK) rc = batch_args_read(pEng, zJson, &a);
  if (rc != BGS_OK) {
    free(a.aId);
    free(a.zRetryAfter);
    return rc;
  }
  pOut = sqlite3_str_new(pEng->db);
  rc = bgs__begin(pEng);
  if (rc == BGS_OK) {
    rc = batch_apply(pEng, &a, pBody, nBody, now, pOut);
    if (rc == BGS_OK && sqlite3_str_errcode(pOut)) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
    rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
  }
  z = sqlite3_str_finish(pOut);
  if (rc == BGS_OK) rc = bgs__out_text(pEng, (const unsigned char *)z, pzOut);
  sqlite3_free(z);
  free(a.aId);
  free(a.zRetryAfter);
  return rc;
}
