/* test_merge.c -- the three-way merge (bgs_merge3): a table of cases, rules, limits, and
   the merge properties over generated documents (the deterministic twin of
   tests/fuzz/fuzz_merge.c). */
#include "check.h"
#include "merge_gen.h"
#include "sqlite3.h"
#include "support.h"

/* Canonical text of a JSON value: object key order does not matter. */
static char *canon(const char *zJson) {
  static sqlite3 *db = NULL;
  sqlite3_stmt *pStmt;
  char *z;
  if (db == NULL) CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
  CHECK(sqlite3_prepare_v2(db,
                           "SELECT group_concat(fullkey || char(1) || type || char(1) ||"
                           " coalesce(quote(atom), ''), char(2) ORDER BY fullkey)"
                           " FROM json_tree(?1)",
                           -1, &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  z = strdup(sqlite3_column_text(pStmt, 0) ? (const char *)sqlite3_column_text(pStmt, 0) : "");
  sqlite3_finalize(pStmt);
  return z;
}

static int json_same(const char *zA, const char *zB) {
  char *a = canon(zA), *b = canon(zB);
  int bSame = strcmp(a, b) == 0;
  free(a);
  free(b);
  return bSame;
}

typedef struct MergeCase {
  const char *zName;
  const char *zBase, *zLocal, *zRemote, *zRules;
  const char *zMerged;    /* expected merged document */
  const char *zConflicts; /* expected unresolvable paths (JSON array) */
} MergeCase;

static const MergeCase aCase[] = {
    {"disjoint fields", "{\"a\":1,\"b\":1}", "{\"a\":2,\"b\":1}", "{\"a\":1,\"b\":3}", NULL,
     "{\"a\":2,\"b\":3}", "[]"},
    {"same change on both sides", "{\"a\":1}", "{\"a\":5}", "{\"a\":5}", NULL, "{\"a\":5}", "[]"},
    {"same field, different values", "{\"t\":\"x\"}", "{\"t\":\"local\"}", "{\"t\":\"remote\"}",
     NULL, "{\"t\":\"remote\"}", "[\"t\"]"},
    {"prefer-local rule", "{\"t\":\"x\",\"n\":1}", "{\"t\":\"local\",\"n\":2}",
     "{\"t\":\"remote\",\"n\":3}", "{\"fields\":{\"t\":\"prefer-local\"}}",
     "{\"t\":\"local\",\"n\":3}", "[\"n\"]"},
    {"prefer-remote default", "{\"t\":\"x\"}", "{\"t\":\"local\"}", "{\"t\":\"remote\"}",
     "{\"default\":\"prefer-remote\"}", "{\"t\":\"remote\"}", "[]"},
    {"newer-wins, local newer", "{\"t\":\"x\"}", "{\"t\":\"local\"}",
     "{\"t\":\"remote\",\"updatedAt\":1000}", "{\"default\":\"newer-wins\",\"localTime\":2000}",
     "{\"t\":\"local\",\"updatedAt\":1000}", "[]"},
    {"newer-wins, remote newer (ISO date)", "{\"t\":\"x\"}", "{\"t\":\"local\"}",
     "{\"t\":\"remote\",\"updatedAt\":\"2030-01-01T00:00:00Z\"}",
     "{\"default\":\"newer-wins\",\"localTime\":2000}",
     "{\"t\":\"remote\",\"updatedAt\":\"2030-01-01T00:00:00Z\"}", "[]"},
    {"newer-wins without times is unresolvable", "{\"t\":\"x\"}", "{\"t\":\"local\"}",
     "{\"t\":\"remote\"}", "{\"default\":\"newer-wins\"}", "{\"t\":\"remote\"}", "[\"t\"]"},
    {"nested objects merge field by field", "{\"addr\":{\"city\":\"A\",\"zip\":\"1\"}}",
     "{\"addr\":{\"city\":\"B\",\"zip\":\"1\"}}", "{\"addr\":{\"city\":\"A\",\"zip\":\"2\"}}", NULL,
     "{\"addr\":{\"city\":\"B\",\"zip\":\"2\"}}", "[]"},
    {"nested conflict reports a dotted path", "{\"addr\":{\"city\":\"A\"}}",
     "{\"addr\":{\"city\":\"B\"}}", "{\"addr\":{\"city\":\"C\"}}", NULL,
     "{\"addr\":{\"city\":\"C\"}}", "[\"addr.city\"]"},
    {"a rule on a parent covers its fields", "{\"addr\":{\"city\":\"A\"}}",
     "{\"addr\":{\"city\":\"B\"}}", "{\"addr\":{\"city\":\"C\"}}",
     "{\"fields\":{\"addr\":\"prefer-local\"}}", "{\"addr\":{\"city\":\"B\"}}", "[]"},
    {"local delete, remote unchanged", "{\"a\":1,\"b\":2}", "{\"b\":2}", "{\"a\":1,\"b\":2}", NULL,
     "{\"b\":2}", "[]"},
    {"remote delete, local unchanged", "{\"a\":1,\"b\":2}", "{\"a\":1,\"b\":2}", "{\"b\":2}", NULL,
     "{\"b\":2}", "[]"},
    {"delete on both sides", "{\"a\":1,\"b\":2}", "{\"b\":2}", "{\"b\":2}", NULL, "{\"b\":2}",
     "[]"},
    {"local delete vs remote change", "{\"a\":1}", "{}", "{\"a\":2}", NULL, "{\"a\":2}", "[\"a\"]"},
    {"local delete vs remote change, prefer-local", "{\"a\":1}", "{}", "{\"a\":2}",
     "{\"default\":\"prefer-local\"}", "{}", "[]"},
    {"added on one side", "{}", "{\"n\":1}", "{\"m\":2}", NULL, "{\"n\":1,\"m\":2}", "[]"},
    {"added on both sides, differently", "{}", "{\"n\":1}", "{\"n\":2}", NULL, "{\"n\":2}",
     "[\"n\"]"},
    {"objects added on both sides merge", "{}", "{\"o\":{\"a\":1}}", "{\"o\":{\"b\":2}}", NULL,
     "{\"o\":{\"a\":1,\"b\":2}}", "[]"},
    {"type change on one side", "{\"a\":1}", "{\"a\":\"one\"}", "{\"a\":1}", NULL,
     "{\"a\":\"one\"}", "[]"},
    {"type change on both sides", "{\"a\":1}", "{\"a\":{\"x\":1}}", "{\"a\":[1]}", NULL,
     "{\"a\":[1]}", "[\"a\"]"},
    {"scalar replaced by different objects is a conflict", "{\"a\":1}", "{\"a\":{\"x\":1}}",
     "{\"a\":{\"y\":1}}", NULL, "{\"a\":{\"y\":1}}", "[\"a\"]"},
    {"null is a value, not a delete", "{\"a\":1}", "{\"a\":null}", "{\"a\":1}", NULL,
     "{\"a\":null}", "[]"},
    {"integer and real differ", "{\"a\":1}", "{\"a\":1.0}", "{\"a\":1}", NULL, "{\"a\":1.0}",
     "[]"},
    {"arrays are atomic: one side", "{\"l\":[1,2]}", "{\"l\":[1,2,3]}", "{\"l\":[1,2]}", NULL,
     "{\"l\":[1,2,3]}", "[]"},
    {"arrays are atomic: both sides", "{\"l\":[1,2]}", "{\"l\":[1,2,3]}", "{\"l\":[0,1,2]}", NULL,
     "{\"l\":[0,1,2]}", "[\"l\"]"},
    {"key order does not make a change", "{\"o\":{\"a\":1,\"b\":2}}", "{\"o\":{\"b\":2,\"a\":1}}",
     "{\"o\":{\"a\":1,\"b\":3}}", NULL, "{\"o\":{\"a\":1,\"b\":3}}", "[]"},
    {"unicode keys", "{\"\xC3\xA9t\xC3\xA9\":1,\"\xE6\x97\xA5\":\"a\"}",
     "{\"\xC3\xA9t\xC3\xA9\":2,\"\xE6\x97\xA5\":\"a\"}",
     "{\"\xC3\xA9t\xC3\xA9\":1,\"\xE6\x97\xA5\":\"b\",\"\xF0\x9F\x98\x80\":true}", NULL,
     "{\"\xC3\xA9t\xC3\xA9\":2,\"\xE6\x97\xA5\":\"b\",\"\xF0\x9F\x98\x80\":true}", "[]"},
    {"keys with quotes, dots and escapes", "{\"a.b\":1,\"q\\\"k\":1}",
     "{\"a.b\":2,\"q\\\"k\":1}", "{\"a.b\":1,\"q\\\"k\":\"\\n\"}", NULL,
     "{\"a.b\":2,\"q\\\"k\":\"\\n\"}", "[]"},
    {"precise numbers survive", "{\"x\":0.1}", "{\"x\":0.30000000000000004}", "{\"x\":0.1,\"y\":1}",
     NULL, "{\"x\":0.30000000000000004,\"y\":1}", "[]"},
};

TEST(test_merge_table_of_cases) {
  bgs_engine *pEng = engine_new();
  size_t i;
  for (i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    const MergeCase *c = &aCase[i];
    char *zOut = NULL;
    char zMerged[4096], zConflicts[1024];
    int rc = bgs_merge3(pEng, c->zBase, c->zLocal, c->zRemote, c->zRules, &zOut);
    if (rc != BGS_OK) fprintf(stderr, "case '%s': %s\n", c->zName, bgs_errmsg(pEng));
    CHECK_OK(rc);
    json_str(zOut, "$.merged", zMerged, sizeof(zMerged));
    json_str(zOut, "$.conflicts", zConflicts, sizeof(zConflicts));
    if (!json_same(zMerged, c->zMerged) || !json_same(zConflicts, c->zConflicts)) {
      fprintf(stderr, "case '%s': got %s, want merged %s conflicts %s\n", c->zName, zOut,
              c->zMerged, c->zConflicts);
      CHECK(0);
    }
    bgs_free(zOut);
  }
  bgs_close(pEng);
}

TEST(test_merge_rejects_bad_documents_with_a_typed_error) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  char *zDeep, *zBig;
  int i, n = 0;
  CHECK_RC(bgs_merge3(pEng, "{}", "not json", "{}", NULL, &zOut), BGS_INVALID_DOCUMENT);
  CHECK(zOut == NULL);
  CHECK_RC(bgs_merge3(pEng, "{}", "{}", "[1,2]", NULL, &zOut), BGS_INVALID_DOCUMENT);
  CHECK_RC(bgs_merge3(pEng, "42", "{}", "{}", NULL, &zOut), BGS_INVALID_DOCUMENT);
  CHECK_RC(bgs_merge3(pEng, NULL, "{}", "{}", NULL, &zOut), BGS_INVALID_DOCUMENT);
  /* 65 levels deep: past the limit; 64 levels are fine. */
  zDeep = malloc(1000);
  for (i = 0; i < 64; i++) n += sprintf(zDeep + n, "{\"a\":");
  n += sprintf(zDeep + n, "[1]");
  for (i = 0; i < 64; i++) zDeep[n++] = '}';
  zDeep[n] = 0;
  CHECK_RC(bgs_merge3(pEng, "{}", zDeep, "{}", NULL, &zOut), BGS_INVALID_DOCUMENT);
  CHECK(strstr(bgs_errmsg(pEng), "deep") != NULL);
  zDeep[5 * 63] = 0; /* cut to 63 objects + [1] is not valid; rebuild smaller */
  n = 0;
  for (i = 0; i < 63; i++) n += sprintf(zDeep + n, "{\"a\":");
  n += sprintf(zDeep + n, "[1]");
  for (i = 0; i < 63; i++) zDeep[n++] = '}';
  zDeep[n] = 0;
  CHECK_OK(bgs_merge3(pEng, "{}", zDeep, "{}", NULL, &zOut));
  bgs_free(zOut);
  free(zDeep);
  /* Over 1 MiB. */
  zBig = malloc(BGS_MAX_DOCUMENT_BYTES + 64);
  n = sprintf(zBig, "{\"s\":\"");
  memset(zBig + n, 'x', BGS_MAX_DOCUMENT_BYTES);
  n += BGS_MAX_DOCUMENT_BYTES;
  n += sprintf(zBig + n, "\"}");
  CHECK_RC(bgs_merge3(pEng, "{}", "{}", zBig, NULL, &zOut), BGS_INVALID_DOCUMENT);
  free(zBig);
  /* Bad rules are an argument error, not a document error. */
  CHECK_RC(bgs_merge3(pEng, "{}", "{}", "{}", "{\"default\":\"coin-flip\"}", &zOut),
           BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_merge3(pEng, "{}", "{}", "{}", "{\"fields\":{\"a\":1}}", &zOut),
           BGS_INVALID_ARGUMENT);
  bgs_close(pEng);
}

/* The properties, over documents generated from a seeded PRNG (merge_gen.h). */
static void check_property(bgs_engine *pEng, const char *zB, const char *zL, const char *zR,
                           const char *zWant, const char *zWhat) {
  char *zOut = NULL;
  char zMerged[65536], zConflicts[4096];
  int rc = bgs_merge3(pEng, zB, zL, zR, NULL, &zOut);
  if (rc != BGS_OK) fprintf(stderr, "%s: %s\nbase %s\nlocal %s\nremote %s\n", zWhat,
                            bgs_errmsg(pEng), zB, zL, zR);
  CHECK_OK(rc);
  json_str(zOut, "$.merged", zMerged, sizeof(zMerged));
  json_str(zOut, "$.conflicts", zConflicts, sizeof(zConflicts));
  if (!json_same(zMerged, zWant) || strcmp(zConflicts, "[]") != 0) {
    fprintf(stderr, "%s fails:\nbase %s\nlocal %s\nremote %s\ngot %s\nwant %s\n", zWhat, zB, zL,
            zR, zOut, zWant);
    CHECK(0);
  }
  bgs_free(zOut);
}

TEST(test_merge_properties_hold_for_generated_documents) {
  bgs_engine *pEng = engine_new();
  merge_gen g;
  int i;
  merge_gen_seed(&g, 20261122);
  for (i = 0; i < 300; i++) {
    merge_gen_doc b = merge_gen_doc_new(&g);
    merge_gen_doc x = merge_gen_doc_mutate(&g, &b);
    merge_gen_doc y = merge_gen_doc_mutate(&g, &b);
    check_property(pEng, b.zText, x.zText, b.zText, x.zText, "merge(b, x, b) = x");
    check_property(pEng, b.zText, b.zText, y.zText, y.zText, "merge(b, b, y) = y");
    check_property(pEng, b.zText, x.zText, x.zText, x.zText, "merge(b, x, x) = x");
    merge_gen_doc_free(&b);
    merge_gen_doc_free(&x);
    merge_gen_doc_free(&y);
  }
  bgs_close(pEng);
}
