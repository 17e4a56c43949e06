/* support.c -- see support.h. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "internal.h"
#include "sqlite3.h"

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void store_init(host_store *p) { memset(p, 0, sizeof(*p)); }

void store_free(host_store *p) {
  uint32_t i;
  for (i = 0; i < p->nChunk; i++) free(p->apChunk[i]);
  free(p->apChunk);
  free(p->aCrc);
  memset(p, 0, sizeof(*p));
}

static void store_grow(host_store *p, uint32_t n) {
  if (n <= p->nChunk) return;
  p->apChunk = realloc(p->apChunk, n * sizeof(*p->apChunk));
  p->aCrc = realloc(p->aCrc, n * sizeof(*p->aCrc));
  CHECK(p->apChunk && p->aCrc);
  memset(p->apChunk + p->nChunk, 0, (n - p->nChunk) * sizeof(*p->apChunk));
  memset(p->aCrc + p->nChunk, 0, (n - p->nChunk) * sizeof(*p->aCrc));
  p->nChunk = n;
}

void store_flush(bgs_engine *pEng, host_store *p) {
  unsigned char *pBuf;
  size_t nBuf;
  uint32_t nChunkSize, n, i, nLive;
  double rSize;
  CHECK_OK(bgs_changes_take(pEng, &pBuf, &nBuf));
  nChunkSize = get_u32(pBuf);
  n = get_u32(pBuf + 4);
  memcpy(&rSize, pBuf + 8, 8);
  CHECK(nChunkSize == BGS_CHUNK_SIZE);
  CHECK(nBuf == 16 + (size_t)n * (8 + nChunkSize));
  for (i = 0; i < n; i++) {
    uint32_t iChunk = get_u32(pBuf + 16 + i * 8);
    uint32_t uCrc = get_u32(pBuf + 16 + i * 8 + 4);
    const unsigned char *pData = pBuf + 16 + (size_t)n * 8 + (size_t)i * nChunkSize;
    CHECK(bgs_crc32(pData, nChunkSize) == uCrc);
    store_grow(p, iChunk + 1);
    if (p->apChunk[iChunk] == NULL) p->apChunk[iChunk] = malloc(nChunkSize);
    memcpy(p->apChunk[iChunk], pData, nChunkSize);
    p->aCrc[iChunk] = uCrc;
  }
  p->nSize = (int64_t)rSize;
  nLive = (uint32_t)((p->nSize + nChunkSize - 1) / nChunkSize);
  for (i = nLive; i < p->nChunk; i++) {
    free(p->apChunk[i]);
    p->apChunk[i] = NULL;
  }
  if (n > 0) p->nFlush++;
  bgs_free(pBuf);
}

bgs_image *store_image(const host_store *p) {
  bgs_image *pImg;
  uint32_t i;
  CHECK_OK(bgs_image_new(&pImg));
  for (i = 0; i < p->nChunk; i++) {
    if (p->apChunk[i]) CHECK_OK(bgs_image_load(pImg, i, p->apChunk[i], BGS_CHUNK_SIZE, p->aCrc[i]));
  }
  CHECK_OK(bgs_image_set_size(pImg, p->nSize));
  return pImg;
}

void store_save_file(const host_store *p, const char *zPath) {
  FILE *f = fopen(zPath, "wb");
  uint32_t i;
  static const unsigned char zero[BGS_CHUNK_SIZE];
  CHECK(f != NULL);
  for (i = 0; (int64_t)i * BGS_CHUNK_SIZE < p->nSize; i++) {
    const unsigned char *pData = (i < p->nChunk && p->apChunk[i]) ? p->apChunk[i] : zero;
    size_t nPart = BGS_CHUNK_SIZE;
    if ((int64_t)(i + 1) * BGS_CHUNK_SIZE > p->nSize) nPart = (size_t)(p->nSize - (int64_t)i * BGS_CHUNK_SIZE);
    CHECK(fwrite(pData, 1, nPart, f) == nPart);
  }
  CHECK(fclose(f) == 0);
}

void store_load_file(host_store *p, const char *zPath) {
  FILE *f = fopen(zPath, "rb");
  unsigned char buf[BGS_CHUNK_SIZE];
  size_t n;
  uint32_t i = 0;
  CHECK(f != NULL);
  store_init(p);
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
    store_grow(p, i + 1);
    p->apChunk[i] = calloc(1, BGS_CHUNK_SIZE);
    memcpy(p->apChunk[i], buf, n);
    p->aCrc[i] = bgs_crc32(p->apChunk[i], BGS_CHUNK_SIZE);
    p->nSize += (int64_t)n;
    i++;
  }
  fclose(f);
}

bgs_engine *engine_new(void) {
  bgs_image *pImg;
  bgs_engine *pEng;
  bgs_config cfg = {0};
  cfg.uSeed = 42;
  cfg.zInstallId = "test";
  CHECK_OK(bgs_image_new(&pImg));
  CHECK_OK(bgs_open(pImg, &cfg, 1000, &pEng));
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"q\",\"backoff\":{\"jitter\":\"none\"}}", 1000));
  return pEng;
}

bgs_engine *engine_reopen(const host_store *p) {
  bgs_engine *pEng;
  bgs_config cfg = {0};
  cfg.uSeed = 42;
  CHECK_OK(bgs_open(store_image(p), &cfg, 1000, &pEng));
  return pEng;
}

int64_t enqueue_with(bgs_engine *pEng, const char *zPath, const char *zExtra, bgs_time now) {
  char zJson[1024];
  char *zOut = NULL;
  int64_t id;
  snprintf(zJson, sizeof(zJson),
           "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/%s\"%s%s}", zPath,
           zExtra ? "," : "", zExtra ? zExtra : "");
  { int rcEnq = bgs_enqueue(pEng, zJson, zPath, strlen(zPath), now, &zOut); if (rcEnq) fprintf(stderr, "enqueue: %s\n", bgs_errmsg(pEng)); CHECK_OK(rcEnq); }
  id = json_int(zOut, "$.id");
  bgs_free(zOut);
  return id;
}

int64_t enqueue_simple(bgs_engine *pEng, const char *zPath, bgs_time now) {
  return enqueue_with(pEng, zPath, NULL, now);
}

static sqlite3 *json_db(void) {
  static sqlite3 *db = NULL;
  if (db == NULL) CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
  return db;
}

static sqlite3_stmt *json_query(const char *zJson, const char *zPath) {
  sqlite3_stmt *pStmt;
  CHECK(sqlite3_prepare_v2(json_db(), "SELECT json_extract(?1, ?2)", -1, &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  return pStmt;
}

int64_t json_int(const char *zJson, const char *zPath) {
  sqlite3_stmt *pStmt = json_query(zJson, zPath);
  int64_t v = sqlite3_column_type(pStmt, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(pStmt, 0);
  sqlite3_finalize(pStmt);
  return v;
}

void json_str(const char *zJson, const char *zPath, char *zOut, size_t nOut) {
  sqlite3_stmt *pStmt = json_query(zJson, zPath);
  const char *z = (const char *)sqlite3_column_text(pStmt, 0);
  snprintf(zOut, nOut, "%s", z ? z : "");
  sqlite3_finalize(pStmt);
}

int claim_ids(bgs_engine *pEng, int nMax, bgs_time now, int64_t *aId, int64_t *aAttempt) {
  char *zOut = NULL;
  int n, i;
  char zPath[64];
  CHECK_OK(bgs_claim(pEng, "q", nMax, now, &zOut));
  {
    sqlite3_stmt *pLen;
    CHECK(sqlite3_prepare_v2(json_db(), "SELECT json_array_length(?1)", -1, &pLen, NULL) == SQLITE_OK);
    sqlite3_bind_text(pLen, 1, zOut, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(pLen) == SQLITE_ROW);
    n = sqlite3_column_int(pLen, 0);
    sqlite3_finalize(pLen);
  }
  for (i = 0; i < n; i++) {
    snprintf(zPath, sizeof(zPath), "$[%d].id", i);
    if (aId) aId[i] = json_int(zOut, zPath);
    snprintf(zPath, sizeof(zPath), "$[%d].attempt", i);
    if (aAttempt) aAttempt[i] = json_int(zOut, zPath);
  }
  bgs_free(zOut);
  return n;
}

int report(bgs_engine *pEng, int64_t id, int64_t nAttempt, int iStatus, const char *zHeaders,
           bgs_time now, char *zState, size_t nState) {
  char zJson[512];
  char *zOut = NULL;
  int rc;
  snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":%lld,\"status\":%d%s%s}", (long long)id,
           (long long)nAttempt, iStatus, zHeaders ? ",\"headers\":" : "", zHeaders ? zHeaders : "");
  rc = bgs_outcome(pEng, zJson, NULL, 0, now, &zOut);
  if (zState) {
    if (rc == BGS_OK) json_str(zOut, "$.state", zState, nState);
    else snprintf(zState, nState, "%s", "");
  }
  bgs_free(zOut);
  return rc;
}

int64_t count_state(bgs_engine *pEng, const char *zState, bgs_time now) {
  char *zOut = NULL;
  char zPath[64];
  int64_t n;
  CHECK_OK(bgs_status(pEng, NULL, now, &zOut));
  snprintf(zPath, sizeof(zPath), "$.counts.%s", zState);
  n = json_int(zOut, zPath);
  bgs_free(zOut);
  return n;
}

bgs_engine *engine_with_config(const bgs_config *pCfg, const char *zQueueJson) {
  bgs_image *pImg;
  bgs_engine *pEng;
  char zJson[1024];
  CHECK_OK(bgs_image_new(&pImg));
  CHECK_OK(bgs_open(pImg, pCfg, 1000, &pEng));
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"q\",\"backoff\":{\"jitter\":\"none\"}}", 1000));
  if (zQueueJson != NULL) {
    int rc;
    snprintf(zJson, sizeof(zJson), "{\"name\":\"q\",%s}", zQueueJson);
    rc = bgs_queue_configure(pEng, zJson, 1000);
    if (rc) fprintf(stderr, "configure: %s\n", bgs_errmsg(pEng));
    CHECK_OK(rc);
  }
  return pEng;
}

bgs_engine *engine_with(const char *zQueueJson) {
  bgs_config cfg = {0};
  cfg.uSeed = 42;
  cfg.zInstallId = "test";
  return engine_with_config(&cfg, zQueueJson);
}

char *enqueue_raw(bgs_engine *pEng, const char *zJson, const char *zBody, bgs_time now) {
  char *zOut = NULL;
  int rc = bgs_enqueue(pEng, zJson, zBody, zBody ? strlen(zBody) : 0, now, &zOut);
  if (rc) fprintf(stderr, "enqueue %s: %s\n", zJson, bgs_errmsg(pEng));
  CHECK_OK(rc);
  return zOut;
}

int claim_ids_in(bgs_engine *pEng, const char *zQueue, int nMax, bgs_time now, int64_t *aId,
                 int64_t *aAttempt) {
  char *zOut = NULL;
  char zPath[64];
  int n, i;
  CHECK_OK(bgs_claim(pEng, zQueue, nMax, now, &zOut));
  n = (int)json_len(zOut, "$");
  for (i = 0; i < n; i++) {
    snprintf(zPath, sizeof(zPath), "$[%d].id", i);
    if (aId) aId[i] = json_int(zOut, zPath);
    snprintf(zPath, sizeof(zPath), "$[%d].attempt", i);
    if (aAttempt) aAttempt[i] = json_int(zOut, zPath);
  }
  bgs_free(zOut);
  return n;
}

static sqlite3_stmt *item_query(bgs_engine *pEng, int64_t id, const char *zField, char **pzItems) {
  sqlite3_stmt *pStmt;
  char zPath[128];
  CHECK_OK(bgs_items(pEng, "{\"limit\":1000000}", pzItems));
  snprintf(zPath, sizeof(zPath), "$.%s", zField);
  CHECK(sqlite3_prepare_v2(json_db(),
                           "SELECT json_extract(value, ?3) FROM json_each(?1)"
                           " WHERE json_extract(value, '$.id') = ?2",
                           -1, &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_text(pStmt, 1, *pzItems, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, id);
  sqlite3_bind_text(pStmt, 3, zPath, -1, SQLITE_TRANSIENT);
  return pStmt;
}

void item_str(bgs_engine *pEng, int64_t id, const char *zField, char *zOut, size_t nOut) {
  char *zItems = NULL;
  sqlite3_stmt *pStmt = item_query(pEng, id, zField, &zItems);
  const char *z = NULL;
  if (sqlite3_step(pStmt) == SQLITE_ROW) z = (const char *)sqlite3_column_text(pStmt, 0);
  snprintf(zOut, nOut, "%s", z ? z : "");
  sqlite3_finalize(pStmt);
  bgs_free(zItems);
}

int64_t item_int(bgs_engine *pEng, int64_t id, const char *zField) {
  char *zItems = NULL;
  sqlite3_stmt *pStmt = item_query(pEng, id, zField, &zItems);
  int64_t v = -1;
  if (sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    v = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  bgs_free(zItems);
  return v;
}

int64_t items_count(bgs_engine *pEng, const char *zFilter) {
  char *zOut = NULL;
  int64_t n;
  CHECK_OK(bgs_items(pEng, zFilter, &zOut));
  n = json_len(zOut, "$");
  bgs_free(zOut);
  return n;
}

const char *body_text(bgs_engine *pEng, int64_t id) {
  static char zBuf[4096];
  unsigned char *p = NULL;
  size_t n = 0;
  CHECK_OK(bgs_body(pEng, id, &p, &n));
  CHECK(n < sizeof(zBuf));
  if (n) memcpy(zBuf, p, n);
  zBuf[n] = 0;
  bgs_free(p);
  return zBuf;
}

int64_t json_len(const char *zJson, const char *zPath) {
  sqlite3_stmt *pStmt;
  int64_t n;
  CHECK(sqlite3_prepare_v2(json_db(), "SELECT json_array_length(?1, ?2)", -1, &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  n = sqlite3_column_type(pStmt, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(pStmt, 0);
  sqlite3_finalize(pStmt);
  return n;
}

int same_json(const char *zA, const char *zB) {
  sqlite3_stmt *pStmt;
  int b;
  /* Member order does not matter: compare the sorted leaves (paths and values). */
  CHECK(sqlite3_prepare_v2(json_db(),
                           "SELECT json_valid(?1) AND json_valid(?2) AND"
                           " (SELECT group_concat(fullkey || '=' || type || ':' || coalesce(atom, ''), ',')"
                           "  FROM (SELECT * FROM json_tree(?1) ORDER BY fullkey)) ="
                           " (SELECT group_concat(fullkey || '=' || type || ':' || coalesce(atom, ''), ',')"
                           "  FROM (SELECT * FROM json_tree(?2) ORDER BY fullkey))",
                           -1, &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_text(pStmt, 1, zA, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zB, -1, SQLITE_STATIC);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  b = sqlite3_column_int(pStmt, 0);
  sqlite3_finalize(pStmt);
  if (!b) fprintf(stderr, "json differs:\n  %s\n  %s\n", zA, zB);
  return b;
}

/* Whether the plan of zSql uses zWant and scans no table. */
int plan_is(bgs_engine *pEng, const char *zSql, const char *zWant) {
  sqlite3_stmt *pStmt;
  char *zExplain = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", zSql);
  int bWant = 0, bScan = 0;
  CHECK(sqlite3_prepare_v2(pEng->db, zExplain, -1, &pStmt, NULL) == SQLITE_OK);
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    const char *zDetail = (const char *)sqlite3_column_text(pStmt, 3);
    if (getenv("BGS_SHOW_PLAN")) fprintf(stderr, "plan: %s\n", zDetail);
    if (strstr(zDetail, zWant)) bWant = 1;
    if (strncmp(zDetail, "SCAN", 4) == 0) bScan = 1;
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zExplain);
  return bWant && !bScan;
}
