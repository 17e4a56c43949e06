/* test_queue.c -- enqueue validation, FIFO claims, leases, idempotency keys. */
#include "check.h"
#include "support.h"
#include "internal.h"

TEST(test_queue_claims_in_fifo_order) {
  bgs_engine *pEng = engine_new();
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1001);
  int64_t c = enqueue_simple(pEng, "c", 1002);
  int64_t aId[8];
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, NULL), 3);
  CHECK_EQ_I64(aId[0], a);
  CHECK_EQ_I64(aId[1], b);
  CHECK_EQ_I64(aId[2], c);
  bgs_close(pEng);
}

TEST(test_queue_claim_respects_max) {
  bgs_engine *pEng = engine_new();
  int64_t aId[8];
  int i;
  for (i = 0; i < 5; i++) enqueue_simple(pEng, "x", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, NULL), 2);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, NULL), 3);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, NULL), 0);
  bgs_close(pEng);
}

TEST(test_queue_leased_item_is_not_claimed_twice) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4];
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1);
  /* The default lease is 60 s: just before it ends the item stays out. */
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000 + 59999, aId, NULL), 0);
  CHECK_EQ_I64(count_state(pEng, "inflight", 2000), 1);
  bgs_close(pEng);
}

TEST(test_queue_expired_lease_makes_item_claimable_with_same_key) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  char zKey1[128], zKey2[128];
  int64_t aAttempt[4];
  enqueue_simple(pEng, "a", 1000);
  CHECK_OK(bgs_claim(pEng, "q", 4, 2000, &zOut));
  json_str(zOut, "$[0].key", zKey1, sizeof(zKey1));
  bgs_free(zOut);
  CHECK_OK(bgs_claim(pEng, "q", 4, 2000 + 60000, &zOut));
  json_str(zOut, "$[0].key", zKey2, sizeof(zKey2));
  CHECK_EQ_I64(json_int(zOut, "$[0].attempt"), 2);
  bgs_free(zOut);
  CHECK(zKey1[0] != 0);
  CHECK_STR(zKey1, zKey2);
  (void)aAttempt;
  bgs_close(pEng);
}

TEST(test_queue_keys_are_unique_and_prefixed_by_install_id) {
  bgs_engine *pEng = engine_new();
  char *zOut1 = NULL, *zOut2 = NULL;
  char zKey1[128], zKey2[128];
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 0, 1, &zOut1));
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 0, 1, &zOut2));
  json_str(zOut1, "$.key", zKey1, sizeof(zKey1));
  json_str(zOut2, "$.key", zKey2, sizeof(zKey2));
  CHECK(strcmp(zKey1, zKey2) != 0);
  CHECK(strncmp(zKey1, "test.", 5) == 0);
  bgs_free(zOut1);
  bgs_free(zOut2);
  bgs_close(pEng);
}

TEST(test_queue_answer_escapes_an_install_id_json_would_not_take_raw) {
  /* The install id is the app's option: the enqueue answer is still valid JSON, and the
     key in it is the key stored (and sent). */
  bgs_config cfg = {0};
  bgs_engine *pEng;
  char *zOut = NULL;
  char zKey[128], zStored[128];
  cfg.uSeed = 1;
  cfg.zInstallId = "a\"b\\c\n";
  pEng = engine_with_config(&cfg, NULL);
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 0, 1, &zOut));
  json_str(zOut, "$.key", zKey, sizeof(zKey));
  CHECK_STR(zKey, "a\"b\\c\n.1");
  item_str(pEng, json_int(zOut, "$.id"), "key", zStored, sizeof(zStored));
  CHECK_STR(zStored, zKey);
  bgs_free(zOut);
  bgs_close(pEng);
}

TEST(test_queue_limits_are_read_back_as_configured) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  CHECK_OK(bgs_queue_limits(pEng, "q", &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.maxBodyBytes"), 16777216); /* the default */
  CHECK_EQ_I64(json_int(zOut, "$.maxItems"), 0);
  bgs_free(zOut);
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"q\",\"maxItems\":7,\"maxBytes\":900,\"maxBodyBytes\":300}", 1));
  CHECK_OK(bgs_queue_limits(pEng, "q", &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.maxItems"), 7);
  CHECK_EQ_I64(json_int(zOut, "$.maxBytes"), 900);
  CHECK_EQ_I64(json_int(zOut, "$.maxBodyBytes"), 300);
  bgs_free(zOut);
  CHECK_RC(bgs_queue_limits(pEng, "nowhere", &zOut), BGS_UNKNOWN_QUEUE);
  CHECK(zOut == NULL);
  CHECK_RC(bgs_queue_limits(pEng, NULL, &zOut), BGS_MISUSE);
  bgs_close(pEng);
}

TEST(test_queue_body_round_trips_bytes) {
  bgs_engine *pEng = engine_new();
  unsigned char aBody[300];
  unsigned char *pBody = NULL;
  size_t nBody = 0;
  char *zOut = NULL;
  int i;
  for (i = 0; i < 300; i++) aBody[i] = (unsigned char)i; /* includes NUL bytes */
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://a.test/x\"}", aBody, sizeof(aBody), 1, &zOut));
  CHECK_OK(bgs_body(pEng, json_int(zOut, "$.id"), &pBody, &nBody));
  CHECK_EQ_I64(nBody, 300);
  CHECK(memcmp(pBody, aBody, 300) == 0);
  bgs_free(pBody);
  bgs_free(zOut);
  CHECK_RC(bgs_body(pEng, 999, &pBody, &nBody), BGS_NOT_FOUND);
  bgs_close(pEng);
}

TEST(test_queue_headers_are_normalized_to_lower_case) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  char zType[64];
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"post\",\"url\":\"https://a.test/\",\"headers\":{\"Content-Type\":\"text/plain\"}}", NULL, 0, 1, &zOut));
  bgs_free(zOut);
  CHECK_OK(bgs_claim(pEng, "q", 1, 2, &zOut));
  json_str(zOut, "$[0].headers.content-type", zType, sizeof(zType));
  CHECK_STR(zType, "text/plain");
  json_str(zOut, "$[0].method", zType, sizeof(zType));
  CHECK_STR(zType, "POST");
  bgs_free(zOut);
  bgs_close(pEng);
}

/* Each malformed enqueue gets its typed error and stores nothing. */
TEST(test_queue_rejects_bad_input_and_stores_nothing) {
  static const struct {
    const char *zJson;
    int rc;
  } aCase[] = {
      {"not json", BGS_INVALID_JSON},
      {"[1,2]", BGS_INVALID_JSON},
      {"{\"method\":\"POST\",\"url\":\"https://a.test/\"}", BGS_INVALID_ARGUMENT},
      {"{\"queue\":\"nope\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", BGS_UNKNOWN_QUEUE},
      {"{\"queue\":\"q\",\"method\":\"CONNECT\",\"url\":\"https://a.test/\"}", BGS_INVALID_METHOD},
      {"{\"queue\":\"q\",\"method\":7,\"url\":\"https://a.test/\"}", BGS_INVALID_METHOD},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"/relative\"}", BGS_INVALID_URL},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"javascript:alert(1)\"}", BGS_INVALID_URL},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/a b\"}", BGS_INVALID_URL},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https:///nohost\"}", BGS_INVALID_URL},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"priority\":\"urgent\"}", BGS_INVALID_PRIORITY},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"priority\":1}", BGS_INVALID_PRIORITY},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"entity\":5}", BGS_INVALID_ARGUMENT},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"entity\":\"\"}", BGS_INVALID_ARGUMENT},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"headers\":[]}", BGS_INVALID_ARGUMENT},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"headers\":{\"a\":1}}", BGS_INVALID_ARGUMENT},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"headers\":{\"bad name\":\"x\"}}", BGS_INVALID_ARGUMENT},
      {"{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\",\"headers\":{\"x\":\"a\\r\\nInjected: 1\"}}", BGS_INVALID_ARGUMENT},
  };
  bgs_engine *pEng = engine_new();
  size_t i;
  for (i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    char *zOut = (char *)1;
    int rc = bgs_enqueue(pEng, aCase[i].zJson, NULL, 0, 1, &zOut);
    if (rc != aCase[i].rc) {
      fprintf(stderr, "case %d (%s): got %s (%s), want %s\n", (int)i, aCase[i].zJson, bgs_errname(rc),
              bgs_errmsg(pEng), bgs_errname(aCase[i].rc));
      exit(1);
    }
    CHECK(zOut == NULL);
    CHECK(strcmp(bgs_errmsg(pEng), "no error") != 0);
  }
  CHECK_EQ_I64(count_state(pEng, "pending", 2), 0);
  bgs_close(pEng);
}

TEST(test_queue_full_and_body_limits_are_typed_errors) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  char aBody[64] = {0};
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"small\",\"maxItems\":2,\"maxBodyBytes\":32}", 1));
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"small\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", aBody, 10, 1, &zOut));
  bgs_free(zOut);
  CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"small\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", aBody, 33, 1, &zOut), BGS_BODY_TOO_LARGE);
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"small\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", aBody, 10, 1, &zOut));
  bgs_free(zOut);
  CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"small\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", aBody, 10, 1, &zOut), BGS_QUEUE_FULL);
  bgs_close(pEng);
}

TEST(test_queue_configure_rejects_bad_policies) {
  bgs_engine *pEng = engine_new();
  CHECK_RC(bgs_queue_configure(pEng, "{}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"z\",\"backoff\":{\"kind\":\"fibonacci\"}}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"z\",\"backoff\":{\"initialMs\":-1}}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"z\",\"backoff\":{\"initialMs\":\"5\"}}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"z\",\"backoff\":{\"initialMs\":5000,\"maxMs\":10}}", 1), BGS_INVALID_ARGUMENT);
  /* None of the failed calls created the queue. */
  {
    char *zOut = NULL;
    CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"z\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 0, 1, &zOut), BGS_UNKNOWN_QUEUE);
  }
  bgs_close(pEng);
}

TEST(test_queue_claims_by_priority_then_fifo) {
  bgs_engine *pEng = engine_new();
  int64_t low = enqueue_with(pEng, "low", "\"priority\":\"low\"", 1000);
  int64_t n1 = enqueue_with(pEng, "n1", "\"priority\":\"normal\"", 1001);
  int64_t high = enqueue_with(pEng, "high", "\"priority\":\"high\"", 1002);
  int64_t n2 = enqueue_simple(pEng, "n2", 1003); /* normal by default */
  int64_t crit = enqueue_with(pEng, "crit", "\"priority\":\"critical\"", 1004);
  int64_t high2 = enqueue_with(pEng, "high2", "\"priority\":\"high\"", 1005);
  int64_t aId[8];
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, NULL), 6);
  CHECK_EQ_I64(aId[0], crit);
  CHECK_EQ_I64(aId[1], high);
  CHECK_EQ_I64(aId[2], high2);
  CHECK_EQ_I64(aId[3], n1);
  CHECK_EQ_I64(aId[4], n2);
  CHECK_EQ_I64(aId[5], low);
  bgs_close(pEng);
}

TEST(test_queue_a_claim_of_one_takes_the_most_urgent) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2];
  int64_t crit;
  enqueue_with(pEng, "low", "\"priority\":\"low\"", 1000);
  crit = enqueue_with(pEng, "crit", "\"priority\":\"critical\"", 1001);
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, NULL), 1);
  CHECK_EQ_I64(aId[0], crit);
  bgs_close(pEng);
}

TEST(test_queue_retried_item_keeps_its_priority_place) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  int64_t crit = enqueue_with(pEng, "crit", "\"priority\":\"critical\"", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, crit, 1, 503, NULL, 2000, NULL, 0));
  enqueue_simple(pEng, "n", 3000);
  CHECK_EQ_I64(claim_ids(pEng, 1, 40000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], crit);
  bgs_close(pEng);
}

TEST(test_queue_item_limit_counts_only_unfinished_items) {
  bgs_engine *pEng = engine_with("\"maxItems\":2");
  int64_t aId[4], aAt[4];
  char *zOut = NULL;
  enqueue_simple(pEng, "a", 1000);
  enqueue_simple(pEng, "b", 1000);
  CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 0, 1000, &zOut), BGS_QUEUE_FULL);
  CHECK(zOut == NULL);
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 200, NULL, 2000, NULL, 0));
  enqueue_simple(pEng, "c", 2001); /* room again */
  bgs_close(pEng);
}

TEST(test_queue_byte_limit_is_queue_full_and_stores_nothing) {
  bgs_engine *pEng = engine_with("\"maxBytes\":10");
  char *zOut = NULL;
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", "123456", 6, 1000, &zOut));
  bgs_free(zOut);
  zOut = NULL;
  CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", "12345", 5, 1000, &zOut), BGS_QUEUE_FULL);
  CHECK(zOut == NULL);
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", "1234", 4, 1000, &zOut));
  bgs_free(zOut);
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  bgs_close(pEng);
}

TEST(test_queue_claim_rejects_bad_arguments) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  CHECK_RC(bgs_claim(pEng, "q", 0, 1, &zOut), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_claim(pEng, "q", 10001, 1, &zOut), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_claim(pEng, "nope", 1, 1, &zOut), BGS_UNKNOWN_QUEUE);
  CHECK_RC(bgs_claim(pEng, NULL, 1, 1, &zOut), BGS_MISUSE);
  CHECK(zOut == NULL);
  bgs_close(pEng);
}

TEST(test_queue_oversized_body_is_rejected_and_stores_nothing) {
  bgs_engine *pEng = engine_with("\"maxBodyBytes\":8");
  char *zOut = NULL;
  CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", "123456789", 9, 1000, &zOut), BGS_BODY_TOO_LARGE);
  CHECK(zOut == NULL);
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  bgs_close(pEng);
}

TEST(test_queue_configure_rejects_bad_coalesce_and_batch_options) {
  bgs_engine *pEng = engine_new();
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"coalesce\":1}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":true}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":{\"url\":\"/rel\",\"maxItems\":5}}", 1), BGS_INVALID_URL);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":{\"url\":\"https://a.test/b\",\"maxItems\":0}}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":{\"url\":\"https://a.test/b\",\"maxItems\":1001}}", 1), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":{\"url\":\"https://a.test/b\"}}", 1), BGS_INVALID_ARGUMENT);
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"q\",\"coalesce\":true,\"batch\":{\"url\":\"https://a.test/b\",\"maxItems\":3}}", 1));
  bgs_close(pEng);
}

/* The hot calls read plain JSON in C and anything else through SQLite's JSON functions
   (json.c): an item written both ways is stored and claimed alike. The second spelling
   has escapes, which send it down the SQL path. */
TEST(test_queue_plain_and_escaped_items_are_read_alike) {
  static const char *const azItem[] = {
      "{\"queue\":\"q\",\"method\":\"patch\",\"url\":\"https://a.test/x?y=1\",\"priority\":\"high\","
      "\"entity\":\"e-1\",\"headers\":{\"X-Tag\":\"a b\",\"Accept\":\"*/*\",\"x-tag\":\"2\"},\"other\":[1,{}]}",
      "{\"queue\":\"q\",\"method\":\"p\\u0061tch\",\"url\":\"https:\\/\\/a.test\\/x?y=1\",\"priority\":\"high\","
      "\"entity\":\"e-1\",\"headers\":{\"X-T\\u0061g\":\"a b\",\"Accept\":\"*\\/*\",\"x-tag\":\"2\"},\"other\":[1,{}]}"};
  char *azClaim[2];
  int i;
  for (i = 0; i < 2; i++) {
    bgs_engine *pEng = engine_new();
    char *zOut = NULL;
    CHECK_OK(bgs_enqueue(pEng, azItem[i], "b", 1, 1, &zOut));
    bgs_free(zOut);
    CHECK_OK(bgs_claim(pEng, "q", 1, 2, &azClaim[i]));
    bgs_close(pEng);
  }
  CHECK_STR(azClaim[0], azClaim[1]);
  CHECK(strstr(azClaim[0], "{\"x-tag\":\"a b\",\"accept\":\"*/*\",\"x-tag\":\"2\"}") != NULL);
  bgs_free(azClaim[0]);
  bgs_free(azClaim[1]);
}

/* The same for outcomes: the Retry-After header is found in any case, escaped or not. */
TEST(test_queue_plain_and_escaped_outcomes_are_read_alike) {
  static const char *const azHeaders[] = {"{\"ETag\":\"v\",\"RETRY-after\":\"120\"}",
                                          "{\"ETag\":\"v\",\"RETRY-\\u0061fter\":\"120\"}"};
  char azState[2][32];
  int64_t aDue[2];
  int i;
  for (i = 0; i < 2; i++) {
    bgs_engine *pEng = engine_new();
    int64_t aId[1], aAt[1];
    enqueue_simple(pEng, "a", 1000);
    CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1);
    CHECK_OK(report(pEng, aId[0], aAt[0], 503, azHeaders[i], 2000, azState[i], sizeof(azState[i])));
    aDue[i] = item_int(pEng, aId[0], "dueAt");
    bgs_close(pEng);
  }
  CHECK_STR(azState[0], "waiting");
  CHECK_STR(azState[0], azState[1]);
  CHECK_EQ_I64(aDue[0], 2000 + 120000);
  CHECK_EQ_I64(aDue[0], aDue[1]);
}

/* The claim writes a leased item in C where json_object() would write the same text
   (queue.c), else through BGS__LEASED_SQL: for items of every shape -- priorities,
   entities with characters SQLite escapes, header values with spaces, quotes and
   escapes, conflict fields, a body reference -- it must equal what the SQL writes. */
TEST(test_queue_claimed_item_json_is_what_json_object_writes) {
  static const char *const azItem[] = {
      "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/a\"}",
      "{\"queue\":\"q\",\"method\":\"put\",\"url\":\"https://api.test/b?x=1&y=%20\","
      "\"priority\":\"critical\",\"entity\":\"note:1\","
      "\"headers\":{\"Content-Type\":\"application/json; charset=utf-8\",\"X-A\":\"\"}}",
      "{\"queue\":\"q\",\"method\":\"PATCH\",\"url\":\"https://api.test/c\",\"priority\":\"low\","
      "\"entity\":\"say \\\"hi\\\"\\\\ \\u00e9\\ttab\",\"headers\":{\"x-q\":\"a \\\"quoted\\\" \\u00e9\"}}",
      "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/c2\","
      "\"entity\":\"quote \\\" and tab \\t\"}",
      "{\"queue\":\"q\",\"method\":\"DELETE\",\"url\":\"https://api.test/d\",\"priority\":\"high\","
      "\"entity\":\"n:2\",\"baseVersion\":\"v1\"}",
      "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/e\","
      "\"bodyRef\":{\"id\":\"blob-1\",\"size\":12345}}",
      "{ \"queue\" : \"q\", \"method\" : \"GET\", \"url\" : \"https://api.test/f\","
      " \"headers\" : { \"Accept\" : \"*/*\" , \"x-n\" : \"1 2  3\" } }",
  };
  size_t i;
  for (i = 0; i < sizeof(azItem) / sizeof(azItem[0]); i++) {
    bgs_engine *pEng = engine_new();
    sqlite3_stmt *pStmt;
    char *zOut = NULL, *zWant;
    int64_t id;
    CHECK_OK(bgs_enqueue(pEng, azItem[i], NULL, 0, 1, &zOut));
    id = json_int(zOut, "$.id");
    bgs_free(zOut);
    CHECK_OK(bgs_claim(pEng, "q", 1, 2, &zOut));
    pStmt = bgs__stmt(pEng, BGS__LEASED_SQL);
    CHECK(pStmt != NULL);
    sqlite3_bind_int64(pStmt, 1, id);
    CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
    zWant = sqlite3_mprintf("[%s]", sqlite3_column_text(pStmt, 0));
    sqlite3_reset(pStmt);
    CHECK_STR(zOut, zWant);
    sqlite3_free(zWant);
    bgs_free(zOut);
    bgs_close(pEng);
  }
}

/* The engine remembers the next id after an insert (queue.c, next_id) and forgets it at
   every rollback: ids stay one past the highest ever given, through failed calls, a
   delivered newest item pruned at once, and a reopen. */
TEST(test_queue_ids_continue_through_rollbacks_prunes_and_reopens) {
  bgs_engine *pEng = engine_with("\"keepDone\":0");
  host_store s;
  char *zOut = NULL;
  int64_t aId[4];
  store_init(&s);
  CHECK_EQ_I64(enqueue_simple(pEng, "a", 1000), 1);
  CHECK_RC(bgs_enqueue(pEng, "{\"queue\":\"nope\",\"method\":\"POST\",\"url\":\"https://a.test/\"}",
                       NULL, 0, 1001, &zOut),
           BGS_UNKNOWN_QUEUE);
  CHECK_EQ_I64(enqueue_simple(pEng, "b", 1002), 2);
  /* A transaction that inserts and rolls back (as a failed commit would). */
  CHECK_OK(bgs__begin(pEng));
  CHECK_OK(bgs__exec(pEng, "INSERT INTO items(id, key, queue, method, url, headers, body_size,"
                           " priority, state, head, due_at, created_at, updated_at)"
                           " VALUES (3, 'k', 'q', 'POST', 'https://a.test/', '{}', 0, 2, 0, 1, 0,"
                           " 0, 0)"));
  bgs__rollback(pEng, BGS_ERROR);
  CHECK_EQ_I64(enqueue_simple(pEng, "c", 1003), 3);
  /* Deliver the newest: keepDone 0 prunes it, its id is still never given again. */
  CHECK_EQ_I64(claim_ids(pEng, 3, 1004, aId, NULL), 3);
  CHECK_OK(report(pEng, 3, 1, 200, NULL, 1005, NULL, 0));
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  CHECK_EQ_I64(enqueue_simple(pEng, "d", 1006), 4);
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK_EQ_I64(enqueue_simple(pEng, "e", 1007), 5);
  bgs_close(pEng);
  store_free(&s);
}

/* The plain-object reader (json.c) reads enqueue and outcome objects in one pass. What it
   accepts must be valid JSON (json_valid()) with the fields where SQLite finds them; what
   it refuses goes the SQL way, which judges it. */
TEST(test_queue_plain_reader_accepts_only_valid_objects) {
  static const char *const azText[] = {
      "{}", " { } ", "{\"a\":1}", "{\"a\":1,\"b\":\"x\"}",
      "{ \"a\" : [1, {\"c\": null}] , \"b\":true }",
      "{\"a\":1,}", "{,\"a\":1}", "{\"a\" 1}", "{\"a\":1 \"b\":2}", "{\"a\":1}x", "{\"a\":1",
      "{\"a\":}", "{a:1}", "[1]", "\"a\"", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0041\"}",
      "{\"a\":01}", "{\"a\":-}", "{\"a\":1.}", "{\"a\":1e5,\"b\":-0.5E-2}", "{\"b\":{\"a\":1}}",
      "{\"ab\":1,\"b\":2}", "{\"\":1}", "{\"a\":[1,]}", "{\"a\":tru}", "{\"a\":nulls}"};
  static const int abPlain[] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                0, 0, 0, 1, 1, 1, 1, 0, 0, 0};
  static const char *const azKey[] = {"a", "b"};
  bgs_engine *pEng = engine_new();
  sqlite3_stmt *pStmt;
  size_t i;
  CHECK_EQ_I64(sizeof(azText) / sizeof(azText[0]), sizeof(abPlain) / sizeof(abPlain[0]));
  CHECK(sqlite3_prepare_v2(pEng->db,
                           "SELECT json_valid(?1) AND json_type(?1) = 'object',"
                           " json_extract(?1, '$.a'), json_extract(?1, '$.b')",
                           -1, &pStmt, NULL) == SQLITE_OK);
  for (i = 0; i < sizeof(azText) / sizeof(azText[0]); i++) {
    bgs__json_value aV[2];
    int bPlain = bgs__json_plain_object(azText[i], azKey, 2, aV), k;
    if (bPlain != abPlain[i]) fprintf(stderr, "plain reader: %s\n", azText[i]);
    CHECK_EQ_I64(bPlain, abPlain[i]);
    if (!bPlain) continue; /* json_extract() fails on the invalid ones */
    sqlite3_bind_text(pStmt, 1, azText[i], -1, SQLITE_STATIC);
    CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
    CHECK(sqlite3_column_int(pStmt, 0));
    for (k = 0; k < 2; k++) {
      /* A field read as a number or a string is the one json_extract() finds. */
      int iCol = 1 + k;
      if (aV[k].eType == BGS__JSON_ABSENT) CHECK(sqlite3_column_type(pStmt, iCol) == SQLITE_NULL);
      if (aV[k].eType == BGS__JSON_TEXT || aV[k].eType == BGS__JSON_INTEGER) {
        CHECK((size_t)sqlite3_column_bytes(pStmt, iCol) == aV[k].n);
        CHECK(memcmp(sqlite3_column_text(pStmt, iCol), aV[k].z, aV[k].n) == 0);
      }
    }
    sqlite3_reset(pStmt);
  }
  sqlite3_finalize(pStmt);
  bgs_close(pEng);
}
