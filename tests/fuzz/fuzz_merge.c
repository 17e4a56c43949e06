/*
 * fuzz_merge.c -- libFuzzer target for the three-way merge (merge.c).
 *
 * The input drives tests/c/merge_gen.h, which builds a base document and two edited
 * copies (x, y) of it; the merge must satisfy
 *   merge(b, x, b) == x,   merge(b, b, y) == y,   merge(b, x, x) == x
 * with no conflicts (equality as JSON: key order ignored). The raw input is also merged
 * as a document, to exercise the document checks on arbitrary bytes: it must be
 * accepted or rejected with BGS_INVALID_DOCUMENT, never crash.
 * tests/c/test_merge.c runs the same properties over a seeded PRNG in every native run.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../c/merge_gen.h"
#include "bgsync.h"
#include "sqlite3.h"

static bgs_engine *g_pEng = NULL;
static sqlite3 *g_db = NULL;

static void setup(void) {
  bgs_image *pImg;
  bgs_config cfg;
  if (g_pEng != NULL) return;
  memset(&cfg, 0, sizeof(cfg));
  cfg.zInstallId = "fuzz";
  if (bgs_image_new(&pImg) != BGS_OK || bgs_open(pImg, &cfg, 1, &g_pEng) != BGS_OK) abort();
  if (sqlite3_open(":memory:", &g_db) != SQLITE_OK) abort();
}

/* Canonical form of JSON text (sorted leaves), caller frees. */
static char *canon(const char *zJson) {
  sqlite3_stmt *pStmt;
  char *z;
  if (sqlite3_prepare_v2(g_db,
                         "SELECT group_concat(fullkey || char(1) || type || char(1) ||"
                         " coalesce(quote(atom), ''), char(2) ORDER BY fullkey)"
                         " FROM json_tree(?1)",
                         -1, &pStmt, NULL) != SQLITE_OK) {
    abort();
  }
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) abort();
  z = strdup(sqlite3_column_text(pStmt, 0) ? (const char *)sqlite3_column_text(pStmt, 0) : "");
  sqlite3_finalize(pStmt);
  return z;
}

/* The member zKey ("merged"/"conflicts") of bgs_merge3's output. */
static char *member(const char *zOut, const char *zPath) {
  sqlite3_stmt *pStmt;
  char *z;
  if (sqlite3_prepare_v2(g_db, "SELECT ?1 -> ?2", -1, &pStmt, NULL) != SQLITE_OK) abort();
  sqlite3_bind_text(pStmt, 1, zOut, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) abort();
  z = strdup((const char *)sqlite3_column_text(pStmt, 0));
  sqlite3_finalize(pStmt);
  return z;
}

static void check(const char *zB, const char *zL, const char *zR, const char *zWant,
                  const char *zWhat) {
  char *zOut = NULL, *zMerged, *zConflicts, *zC1, *zC2;
  int rc = bgs_merge3(g_pEng, zB, zL, zR, NULL, &zOut);
  if (rc != BGS_OK) {
    fprintf(stderr, "%s: rc %d (%s)\nbase %s\nlocal %s\nremote %s\n", zWhat, rc,
            bgs_errmsg(g_pEng), zB, zL, zR);
    abort();
  }
  zMerged = member(zOut, "$.merged");
  zConflicts = member(zOut, "$.conflicts");
  zC1 = canon(zMerged);
  zC2 = canon(zWant);
  if (strcmp(zC1, zC2) != 0 || strcmp(zConflicts, "[]") != 0) {
    fprintf(stderr, "%s fails\nbase %s\nlocal %s\nremote %s\ngot %s\nwant %s\n", zWhat, zB, zL,
            zR, zOut, zWant);
    abort();
  }
  free(zC1);
  free(zC2);
  free(zMerged);
  free(zConflicts);
  bgs_free(zOut);
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  merge_gen g;
  merge_gen_doc b, x, y;
  char *zRaw;
  char *zOut = NULL;
  int rc;
  setup();
  merge_gen_bytes(&g, pData, nData);
  b = merge_gen_doc_new(&g);
  x = merge_gen_doc_mutate(&g, &b);
  y = merge_gen_doc_mutate(&g, &b);
  check(b.zText, x.zText, b.zText, x.zText, "merge(b, x, b) = x");
  check(b.zText, b.zText, y.zText, y.zText, "merge(b, b, y) = y");
  check(b.zText, x.zText, x.zText, x.zText, "merge(b, x, x) = x");
  merge_gen_doc_free(&b);
  merge_gen_doc_free(&x);
  merge_gen_doc_free(&y);

  /* Arbitrary bytes as a document (up to the first NUL). */
  zRaw = malloc(nData + 1);
  if (zRaw == NULL) abort();
  memcpy(zRaw, pData, nData);
  zRaw[nData] = 0;
  rc = bgs_merge3(g_pEng, "{\"a\":1}", zRaw, "{\"a\":2}", NULL, &zOut);
  if (rc != BGS_OK && rc != BGS_INVALID_DOCUMENT) {
    fprintf(stderr, "raw input: rc %d (%s)\n", rc, bgs_errmsg(g_pEng));
    abort();
  }
  bgs_free(zOut);
  free(zRaw);
  return 0;
}
