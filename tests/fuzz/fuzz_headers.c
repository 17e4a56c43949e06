/*
 * fuzz_headers.c -- the response headers the engine reads: Retry-After (retry_after.c)
 * and ETag (conflict.c), fed raw and through the public outcome path (libFuzzer).
 *
 * Invariants (a violation aborts, so libFuzzer keeps the input):
 *  - bgs__retry_after_parse never crashes; on delta-seconds (optional blanks, 1..10
 *    digits, optional blanks) it gives exactly now + seconds * 1000, and on anything
 *    that is neither digits nor a 29-character IMF-fixdate it gives -1;
 *  - an IMF-fixdate printed from any time 1970..9999 parses back to that time;
 *  - through bgs_outcome (503/429 with the fuzzed Retry-After, the value escaped the way
 *    JSON.stringify escapes a latin-1 header string): the result is BGS_OK, the item
 *    waits, and the delay chosen is within the policy's bounds -- never below the
 *    backoff's own delay, never above maxMs -- and the attempt log records that delay;
 *  - a 412 with the fuzzed ETag and a JSON document: BGS_OK, the item is in conflict
 *    and the conflict's remote version is the ETag exactly (when it is a non-empty
 *    string), so a re-send would carry it verbatim as If-Match.
 *
 * Input: byte 0 selects the mode (mod 16: 14 Retry-After and 15 ETag through the engine,
 * 13 date round trip, else the raw parser), bytes 1..8 parameters, the rest is the header value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgsync.h"
#include "internal.h"
#include "sqlite3.h"

static void fail(const char *zWhy, const char *zValue) {
  fprintf(stderr, "invariant violated: %s [%s]\n", zWhy, zValue ? zValue : "(null)");
  abort();
}

static uint64_t get_u64(const uint8_t *p) {
  uint64_t v = 0;
  int i;
  for (i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* ---- mode 0: the raw parser against a reference for delta-seconds ---- */
static void check_parse(const char *z, bgs_time now) {
  bgs_time got = bgs__retry_after_parse(z, now);
  const char *p = z;
  int64_t nSec = 0;
  int nDigit = 0;
  while (*p == ' ' || *p == '\t') p++;
  if (*p >= '0' && *p <= '9') {
    while (*p >= '0' && *p <= '9') {
      nDigit++;
      if (nDigit <= 10) nSec = nSec * 10 + (*p - '0');
      p++;
    }
    while (*p == ' ' || *p == '\t') p++;
    if (*p == 0 && nDigit <= 10) {
      if (got != now + nSec * 1000) fail("delta-seconds parsed wrong", z);
    } else if (got != -1) {
      fail("malformed delta-seconds accepted", z);
    }
    return;
  }
  if (strlen(p) != 29 && got != -1) fail("a value that is no date accepted", z);
  if (got != -1 && got % 1000 != 0) fail("a date with a fraction of a second", z);
}

/* ---- mode 1: IMF-fixdate round trip ---- */
static void check_date_roundtrip(uint64_t u) {
  /* 1970-01-01 .. 9999-12-31 23:59:59 */
  const int64_t nMax = 253402300799LL;
  time_t t = (time_t)(u % (uint64_t)(nMax + 1));
  struct tm tm;
  char z[64];
  bgs_time got;
  if (gmtime_r(&t, &tm) == NULL) return;
  /* strftime's %a/%b follow the C locale, which is what HTTP wants. */
  if (strftime(z, sizeof(z), "%a, %d %b %Y %H:%M:%S GMT", &tm) != 29) return;
  got = bgs__retry_after_parse(z, 0);
  if (got != (bgs_time)t * 1000) fail("IMF-fixdate round trip", z);
}

/* ---- modes 2, 3: through the engine ---- */

static unsigned char *g_pTemplate; /* bgs_changes_take of a new store with queue q */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bgs_image *template_image(void) {
  bgs_image *pImg = NULL;
  uint32_t n, i, nChunk;
  double rSize;
  if (g_pTemplate == NULL) {
    bgs_engine *pEng = NULL;
    bgs_config cfg;
    size_t nBuf = 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.zInstallId = "fh";
    if (bgs_image_new(&pImg) != BGS_OK || bgs_open(pImg, &cfg, 1000, &pEng) != BGS_OK) abort();
    if (bgs_changes_take(pEng, &g_pTemplate, &nBuf) != BGS_OK) abort();
    bgs_close(pEng);
  }
  nChunk = get_u32(g_pTemplate);
  n = get_u32(g_pTemplate + 4);
  memcpy(&rSize, g_pTemplate + 8, 8);
  if (bgs_image_new(&pImg) != BGS_OK) abort();
  for (i = 0; i < n; i++) {
    const unsigned char *pEntry = g_pTemplate + 16 + (size_t)i * 8;
    const unsigned char *pChunk = g_pTemplate + 16 + (size_t)n * 8 + (size_t)i * nChunk;
    if (bgs_image_load(pImg, get_u32(pEntry), pChunk, nChunk, get_u32(pEntry + 4)) != BGS_OK) abort();
  }
  if (bgs_image_set_size(pImg, (int64_t)rSize) != BGS_OK) abort();
  return pImg;
}

/* A JSON string literal of the latin-1 bytes z[0..n), as JSON.stringify writes it. */
static void json_string(sqlite3_str *p, const unsigned char *z, size_t n) {
  size_t i;
  sqlite3_str_appendchar(p, 1, '"');
  for (i = 0; i < n; i++) {
    unsigned c = z[i];
    if (c == '"' || c == '\\') {
      sqlite3_str_appendf(p, "\\%c", c);
    } else if (c < 0x20 || c >= 0x7f) {
      sqlite3_str_appendf(p, "\\u%04x", c);
    } else {
      sqlite3_str_appendchar(p, 1, (char)c);
    }
  }
  sqlite3_str_appendchar(p, 1, '"');
}

static sqlite3 *g_db; /* parses the engine's JSON */

static int is_ascii(const unsigned char *z, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    if (z[i] >= 0x80) return 0;
  }
  return 1;
}

static int64_t json_i64(const char *zJson, const char *zPath, int64_t dflt) {
  sqlite3_stmt *pStmt = NULL;
  int64_t v = dflt;
  sqlite3_prepare_v2(g_db, "SELECT json_extract(?1, ?2)", -1, &pStmt, NULL);
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    v = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_finalize(pStmt);
  return v;
}

/* json_extract(zJson, zPath) as text, compared with zWant (the decoded header). */
static int json_text_is(const char *zJson, const char *zPath, const char *zWant) {
  sqlite3_stmt *pStmt = NULL;
  int bSame = 0;
  sqlite3_prepare_v2(g_db, "SELECT json_extract(?1, ?2) = json_extract(?3, '$')", -1, &pStmt, NULL);
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 3, zWant, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) == SQLITE_ROW) bSame = sqlite3_column_int(pStmt, 0);
  sqlite3_finalize(pStmt);
  return bSame;
}

static void check_engine(int bEtag, const uint8_t *pParam, const unsigned char *zVal, size_t nVal,
                         const char *zShow) {
  static const int aRetry[] = {503, 429, 500, 0, 408, 425};
  bgs_engine *pEng = NULL;
  bgs_config cfg;
  char zQueue[320], zReport[64];
  char *zOut = NULL, *zJson;
  sqlite3_str *pStr;
  int64_t id, nAttempt, nInitial, nMax, nDelay, nLogged, now = 1700000000000LL;
  int nFailed, i, rc;
  const char *zJitter = (pParam[0] & 3) == 0 ? "none" : (pParam[0] & 3) == 1 ? "full" : "equal";

  memset(&cfg, 0, sizeof(cfg));
  cfg.uSeed = pParam[1];
  cfg.nMaxAttemptLog = 16;
  if (bgs_open(template_image(), &cfg, now, &pEng) != BGS_OK) abort();
  nInitial = 1 + (int64_t)pParam[2] * 997;
  nMax = nInitial + (int64_t)pParam[3] * 60000;
  snprintf(zQueue, sizeof(zQueue),
           "{\"name\":\"q\",\"backoff\":{\"kind\":\"%s\",\"initialMs\":%lld,\"factor\":%d,"
           "\"maxMs\":%lld,\"jitter\":\"%s\"}}",
           (pParam[0] & 4) ? "linear" : "exponential", (long long)nInitial, 1 + pParam[4] % 5,
           (long long)nMax, zJitter);
  if (bgs_queue_configure(pEng, zQueue, now) != BGS_OK) fail(bgs_errmsg(pEng), zQueue);
  if (bgs_enqueue(pEng,
                  "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://api.test/n/1\","
                  "\"entity\":\"n:1\",\"baseVersion\":\"\\\"v1\\\"\"}",
                  "{\"a\":1}", 7, now, &zOut) != BGS_OK) {
    fail(bgs_errmsg(pEng), "enqueue");
  }
  if (g_db == NULL && sqlite3_open(":memory:", &g_db) != SQLITE_OK) abort();
  id = json_i64(zOut, "$.id", -1);
  bgs_free(zOut);

  /* A few plain failures first, so the header meets a later attempt's backoff. */
  nFailed = pParam[5] % 4;
  for (i = 0; i <= nFailed; i++) {
    if (bgs_claim(pEng, "q", 1, now, &zOut) != BGS_OK) fail(bgs_errmsg(pEng), "claim");
    nAttempt = json_i64(zOut, "$[0].attempt", -1);
    bgs_free(zOut);
    if (nAttempt < 1) fail("nothing to claim", zShow);
    pStr = sqlite3_str_new(NULL);
    if (i < nFailed) {
      sqlite3_str_appendf(pStr, "{\"id\":%lld,\"attempt\":%lld,\"status\":503}", (long long)id,
                          (long long)nAttempt);
    } else if (!bEtag) {
      sqlite3_str_appendf(pStr, "{\"id\":%lld,\"attempt\":%lld,\"status\":%d,\"headers\":{\"Retry-After\":",
                          (long long)id, (long long)nAttempt, aRetry[pParam[6] % 6]);
      json_string(pStr, zVal, nVal);
      sqlite3_str_appendall(pStr, "}}");
    } else {
      sqlite3_str_appendf(pStr, "{\"id\":%lld,\"attempt\":%lld,\"status\":412,\"headers\":{\"ETag\":",
                          (long long)id, (long long)nAttempt);
      json_string(pStr, zVal, nVal);
      sqlite3_str_appendall(pStr, "}}");
    }
    zJson = sqlite3_str_finish(pStr);
    rc = bgs_outcome(pEng, zJson, bEtag && i == nFailed ? "{\"a\":2}" : NULL, bEtag && i == nFailed ? 7 : 0,
                     now, &zOut);
    if (rc != BGS_OK) {
      fprintf(stderr, "%s -> %s\n", zJson, bgs_errmsg(pEng));
      fail("outcome refused", zShow);
    }
    if (i < nFailed || !bEtag) {
      /* The backoff alone for this attempt, from a second outcome computed the same way:
         the bounds are [that delay, maxMs] (or exactly it when it is already maxMs). */
      char zState[32] = "";
      sqlite3_stmt *pStmt = NULL;
      nDelay = json_i64(zOut, "$.delayMs", -1);
      sqlite3_prepare_v2(g_db, "SELECT json_extract(?1, '$.state')", -1, &pStmt, NULL);
      sqlite3_bind_text(pStmt, 1, zOut, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_text(pStmt, 0)) {
        snprintf(zState, sizeof(zState), "%s", (const char *)sqlite3_column_text(pStmt, 0));
      }
      sqlite3_finalize(pStmt);
      if (strcmp(zState, "waiting") != 0) fail("a retryable failure did not wait", zShow);
      if (nDelay < 0 || nDelay > nMax) fail("delay outside [0, maxMs]", zShow);
      if (json_i64(zOut, "$.dueAt", -1) != now + nDelay) fail("dueAt is not now + delay", zShow);
      {
        /* The backoff alone for this attempt (attempt i+1), as the policy computes it. */
        bgs__backoff b;
        int64_t nBase;
        b.eKind = (pParam[0] & 4) ? BGS__BACKOFF_LINEAR : BGS__BACKOFF_EXPONENTIAL;
        b.nInitialMs = nInitial;
        b.rFactor = 1 + pParam[4] % 5;
        b.nMaxMs = nMax;
        b.eJitter = (pParam[0] & 3) == 0 ? BGS__JITTER_NONE : (pParam[0] & 3) == 1 ? BGS__JITTER_FULL : BGS__JITTER_EQUAL;
        nBase = bgs__backoff_delay(&b, i + 1, cfg.uSeed, id);
        if (nBase < 0 || nBase > nMax) fail("backoff outside [0, maxMs]", zShow);
        if (i < nFailed && nDelay != nBase) fail("a plain failure did not get the backoff delay", zShow);
        if (nDelay < nBase) fail("a delay below the backoff", zShow);
      }
      if (i == nFailed) {
        bgs_time at = bgs__retry_after_parse((const char *)zVal, now);
        int64_t nWant = at > now ? at - now : 0;
        if (nWant > nMax) nWant = nMax;
        /* The delay honours the header (capped) and never goes below it. */
        /* Compared only for ASCII values: the engine sees a latin-1 byte as two UTF-8 bytes
           (JSON.stringify's \u00XX), which changes a 29-character date's length. */
        if (is_ascii(zVal, nVal) && nDelay < nWant) fail("Retry-After not honoured", zShow);
      }
      bgs_free(zOut);
      snprintf(zReport, sizeof(zReport), "{\"id\":%lld,\"limit\":1}", (long long)id);
      if (bgs_attempts(pEng, zReport, &zOut) != BGS_OK) fail("attempts", zShow);
      nLogged = json_i64(zOut, "$[0].delayMs", -1);
      if (nLogged != nDelay) fail("the attempt log disagrees with the decision", zShow);
      now += nDelay;
    } else {
      if (json_i64(zOut, "$.id", -1) != id) fail("412 decision for another item", zShow);
      bgs_free(zOut);
      if (bgs_conflicts(pEng, "{\"state\":\"all\"}", &zOut) != BGS_OK) fail("conflicts", zShow);
      {
        sqlite3_str *pWant = sqlite3_str_new(NULL);
        char *zWant;
        json_string(pWant, zVal, nVal);
        zWant = sqlite3_str_finish(pWant);
        /* Only a non-empty text ETag counts as a version (conflict.c). */
        if (nVal > 0 && memchr(zVal, 0, nVal) == NULL && !json_text_is(zOut, "$[0].remoteVersion", zWant)) {
          fprintf(stderr, "%s\n", zOut);
          fail("the remote version is not the ETag", zShow);
        }
        sqlite3_free(zWant);
      }
    }
    bgs_free(zOut);
    zOut = NULL;
    sqlite3_free(zJson);
  }
  bgs_close(pEng);
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  char *z;
  size_t nVal;
  if (nData < 9) return 0;
  nVal = nData - 9;
  if (nVal > 4096) return 0;
  z = malloc(nVal + 1);
  if (z == NULL) return 0;
  memcpy(z, pData + 9, nVal);
  z[nVal] = 0;
  /* The engine modes cost a database each; 1 input in 16 takes one of them. */
  switch (pData[0] % 16) {
    case 14:
      check_engine(0, pData + 1, (const unsigned char *)z, strlen(z), z);
      break;
    case 15:
      check_engine(1, pData + 1, (const unsigned char *)z, strlen(z), z);
      break;
    case 13:
      check_date_roundtrip(get_u64(pData + 1));
      break;
    default:
      check_parse(z, (bgs_time)(get_u64(pData + 1) % (1ULL << 50)));
      break;
  }
  free(z);
  return 0;
}
