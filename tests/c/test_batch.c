/* test_batch.c -- many items in one request: the claim, the request body, per-item
   results, failed batches. */
#include "check.h"
#include "support.h"

static bgs_engine *batching(int nMax) {
  char zCfg[128];
  snprintf(zCfg, sizeof(zCfg), "\"batch\":{\"url\":\"https://api.test/batch\",\"maxItems\":%d}", nMax);
  return engine_with(zCfg);
}

typedef struct Batch {
  char *zOut;           /* the descriptor */
  unsigned char *pBody; /* the request body */
  size_t nBody;
  char zItems[2048];    /* {"items":[{id,attempt}...]} for bgs_batch_outcome */
  int n;
} Batch;

static void batch_claim(bgs_engine *pEng, bgs_time now, Batch *b) {
  int i;
  size_t k;
  memset(b, 0, sizeof(*b));
  CHECK_OK(bgs_claim_batch(pEng, "q", now, &b->zOut, &b->pBody, &b->nBody));
  b->n = (int)json_len(b->zOut, "$.items");
  k = (size_t)snprintf(b->zItems, sizeof(b->zItems), "\"items\":[");
  for (i = 0; i < b->n; i++) {
    char zPath[64];
    int64_t id, at;
    snprintf(zPath, sizeof(zPath), "$.items[%d].id", i);
    id = json_int(b->zOut, zPath);
    snprintf(zPath, sizeof(zPath), "$.items[%d].attempt", i);
    at = json_int(b->zOut, zPath);
    k += (size_t)snprintf(b->zItems + k, sizeof(b->zItems) - k, "%s{\"id\":%lld,\"attempt\":%lld}",
                          i ? "," : "", (long long)id, (long long)at);
  }
  snprintf(b->zItems + k, sizeof(b->zItems) - k, "]");
}

static void batch_free(Batch *b) {
  bgs_free(b->zOut);
  bgs_free(b->pBody);
}

/* The request body as a string (it is JSON text). */
static char *body_str(const Batch *b) {
  char *z = malloc(b->nBody + 1);
  CHECK(z != NULL);
  memcpy(z, b->pBody, b->nBody);
  z[b->nBody] = 0;
  return z;
}

/* Reports the batch with status and a response body; returns the result JSON. */
static char *batch_report(bgs_engine *pEng, const Batch *b, int iStatus, const char *zHeaders,
                          const char *zResp, bgs_time now) {
  char zJson[4096];
  char *zOut = NULL;
  int rc;
  snprintf(zJson, sizeof(zJson), "{%s,\"status\":%d%s%s}", b->zItems, iStatus,
           zHeaders ? ",\"headers\":" : "", zHeaders ? zHeaders : "");
  rc = bgs_batch_outcome(pEng, zJson, zResp, zResp ? strlen(zResp) : 0, now, &zOut);
  if (rc) fprintf(stderr, "batch outcome: %s\n", bgs_errmsg(pEng));
  CHECK_OK(rc);
  return zOut;
}

static void key_of(bgs_engine *pEng, int64_t id, char *zKey, size_t n) { item_str(pEng, id, "key", zKey, n); }

TEST(test_batch_claims_up_to_max_items_in_order_into_one_request) {
  bgs_engine *pEng = batching(3);
  int64_t a = enqueue_with(pEng, "a", "\"priority\":\"low\"", 1000);
  int64_t b1 = enqueue_with(pEng, "b1", "\"entity\":\"b\"", 1000);
  int64_t b2 = enqueue_with(pEng, "b2", "\"entity\":\"b\"", 1000);
  int64_t c = enqueue_with(pEng, "c", "\"priority\":\"critical\"", 1000);
  int64_t d = enqueue_simple(pEng, "d", 1000);
  Batch bt;
  char *zReq;
  char zKey[128], zGot[128], zUrl[128];
  (void)b2;
  batch_claim(pEng, 2000, &bt);
  CHECK_EQ_I64(bt.n, 3);
  json_str(bt.zOut, "$.url", zUrl, sizeof(zUrl));
  CHECK_STR(zUrl, "https://api.test/batch");
  json_str(bt.zOut, "$.method", zUrl, sizeof(zUrl));
  CHECK_STR(zUrl, "POST");
  CHECK_EQ_I64(json_int(bt.zOut, "$.items[0].id"), c);
  CHECK_EQ_I64(json_int(bt.zOut, "$.items[1].id"), b1); /* b2 waits behind b1 */
  CHECK_EQ_I64(json_int(bt.zOut, "$.items[2].id"), d);
  CHECK_EQ_I64(json_int(bt.zOut, "$.items[0].attempt"), 1);
  zReq = body_str(&bt);
  CHECK_EQ_I64(json_len(zReq, "$.items"), 3);
  key_of(pEng, c, zKey, sizeof(zKey));
  json_str(zReq, "$.items[0].key", zGot, sizeof(zGot));
  CHECK_STR(zGot, zKey);
  json_str(zReq, "$.items[0].url", zGot, sizeof(zGot));
  CHECK_STR(zGot, "https://api.test/c");
  json_str(zReq, "$.items[0].body", zGot, sizeof(zGot));
  CHECK_STR(zGot, "c");
  CHECK_EQ_I64(count_state(pEng, "inflight", 2000), 3);
  free(zReq);
  batch_free(&bt);
  /* The rest: a (b2 still blocked). */
  batch_claim(pEng, 2000, &bt);
  CHECK_EQ_I64(bt.n, 1);
  CHECK_EQ_I64(json_int(bt.zOut, "$.items[0].id"), a);
  batch_free(&bt);
  /* Nothing ready: an empty batch and no body. */
  batch_claim(pEng, 2000, &bt);
  CHECK_EQ_I64(bt.n, 0);
  CHECK(bt.pBody == NULL && bt.nBody == 0);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_binary_bodies_travel_as_base64) {
  bgs_engine *pEng = batching(5);
  static const unsigned char aBin[] = {0x00, 0xFF, 0x10, 0x80, 'a'};
  char *zOut = NULL, *zReq;
  char zGot[64];
  Batch bt;
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://a.test/bin\"}", aBin, sizeof(aBin), 1000, &zOut));
  bgs_free(zOut);
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://a.test/utf8\"}", "h\xC3\xA9\"\n", 5, 1000, &zOut));
  bgs_free(zOut);
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"DELETE\",\"url\":\"https://a.test/empty\"}", NULL, 0, 1000, &zOut));
  bgs_free(zOut);
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://a.test/bad\"}", "\xC0\xAF", 2, 1000, &zOut));
  bgs_free(zOut);
  batch_claim(pEng, 2000, &bt);
  zReq = body_str(&bt);
  json_str(zReq, "$.items[0].bodyBase64", zGot, sizeof(zGot));
  CHECK_STR(zGot, "AP8QgGE=");
  CHECK_EQ_I64(json_int(zReq, "$.items[0].body"), -1);
  json_str(zReq, "$.items[1].body", zGot, sizeof(zGot));
  CHECK_STR(zGot, "h\xC3\xA9\"\n");
  CHECK_EQ_I64(json_int(zReq, "$.items[2].body"), -1);
  CHECK_EQ_I64(json_int(zReq, "$.items[2].bodyBase64"), -1);
  json_str(zReq, "$.items[3].bodyBase64", zGot, sizeof(zGot)); /* overlong UTF-8 */
  CHECK_STR(zGot, "wK8=");
  free(zReq);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_outcome_applies_each_items_result) {
  bgs_engine *pEng = batching(10);
  int64_t ok = enqueue_simple(pEng, "ok", 1000);
  int64_t retry = enqueue_simple(pEng, "retry", 1000);
  int64_t bad = enqueue_simple(pEng, "bad", 1000);
  int64_t conflict = enqueue_simple(pEng, "conflict", 1000);
  char kOk[64], kRetry[64], kBad[64], kConflict[64], zResp[1024], zState[32];
  char *zOut;
  Batch bt;
  key_of(pEng, ok, kOk, sizeof(kOk));
  key_of(pEng, retry, kRetry, sizeof(kRetry));
  key_of(pEng, bad, kBad, sizeof(kBad));
  key_of(pEng, conflict, kConflict, sizeof(kConflict));
  batch_claim(pEng, 2000, &bt);
  CHECK_EQ_I64(bt.n, 4);
  snprintf(zResp, sizeof(zResp),
           "{\"results\":[{\"key\":\"%s\",\"status\":503,\"headers\":{\"Retry-After\":\"90\"}},"
           "{\"key\":\"%s\",\"status\":201},{\"key\":\"%s\",\"status\":400},"
           "{\"key\":\"%s\",\"status\":409,\"body\":\"{}\"},{\"key\":\"nobody\",\"status\":200}]}",
           kRetry, kOk, kBad, kConflict);
  zOut = batch_report(pEng, &bt, 207, NULL, zResp, 2100);
  json_str(zOut, "$.batch", zState, sizeof(zState));
  CHECK_STR(zState, "ok");
  CHECK_EQ_I64(json_len(zOut, "$.results"), 4);
  bgs_free(zOut);
  item_str(pEng, ok, "state", zState, sizeof(zState));
  CHECK_STR(zState, "done");
  item_str(pEng, retry, "state", zState, sizeof(zState));
  CHECK_STR(zState, "waiting");
  CHECK_EQ_I64(item_int(pEng, retry, "dueAt"), 2100 + 90000);
  item_str(pEng, bad, "state", zState, sizeof(zState));
  CHECK_STR(zState, "dead");
  item_str(pEng, conflict, "state", zState, sizeof(zState));
  CHECK(strcmp(zState, "waiting") != 0 && strcmp(zState, "dead") != 0 && strcmp(zState, "inflight") != 0);
  {
    char *zLog = NULL;
    CHECK_OK(bgs_attempts(pEng, NULL, &zLog));
    CHECK_EQ_I64(json_len(zLog, "$"), 4); /* every item's attempt is logged */
    bgs_free(zLog);
  }
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_items_missing_from_the_results_are_retried) {
  bgs_engine *pEng = batching(10);
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1000);
  char ka[64], zResp[256], zState[32], zReason[64];
  Batch bt;
  key_of(pEng, a, ka, sizeof(ka));
  batch_claim(pEng, 2000, &bt);
  snprintf(zResp, sizeof(zResp), "{\"results\":[{\"key\":\"%s\",\"status\":200}]}", ka);
  bgs_free(batch_report(pEng, &bt, 200, NULL, zResp, 2100));
  item_str(pEng, a, "state", zState, sizeof(zState));
  CHECK_STR(zState, "done");
  item_str(pEng, b, "state", zState, sizeof(zState));
  CHECK_STR(zState, "waiting");
  item_str(pEng, b, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "missing-from-batch");
  CHECK_EQ_I64(item_int(pEng, b, "dueAt"), 2100 + 30000);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_failed_request_is_a_failed_attempt_for_every_item) {
  bgs_engine *pEng = batching(10);
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1000);
  char zState[32], zReason[64];
  char *zOut;
  Batch bt;
  batch_claim(pEng, 2000, &bt);
  zOut = batch_report(pEng, &bt, 503, "{\"retry-after\":\"120\"}", "<html>down</html>", 2100);
  json_str(zOut, "$.batch", zState, sizeof(zState));
  CHECK_STR(zState, "failed");
  bgs_free(zOut);
  item_str(pEng, a, "state", zState, sizeof(zState));
  CHECK_STR(zState, "waiting");
  item_str(pEng, b, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "batch-failed");
  CHECK_EQ_I64(item_int(pEng, b, "dueAt"), 2100 + 120000);
  CHECK_EQ_I64(item_int(pEng, b, "lastStatus"), 503);
  batch_free(&bt);
  /* A 400 on the batch endpoint says nothing about the items: they retry, not die. */
  batch_claim(pEng, 2100 + 120000, &bt);
  CHECK_EQ_I64(bt.n, 2);
  bgs_free(batch_report(pEng, &bt, 400, NULL, NULL, 2100 + 120000));
  CHECK_EQ_I64(count_state(pEng, "waiting", 2100 + 120000), 2);
  batch_free(&bt);
  /* A network error too. */
  batch_claim(pEng, 9999999, &bt);
  CHECK_EQ_I64(bt.n, 2);
  bgs_free(batch_report(pEng, &bt, 0, NULL, NULL, 9999999));
  CHECK_EQ_I64(count_state(pEng, "waiting", 9999999), 2);
  CHECK_EQ_I64(item_int(pEng, a, "attempts"), 3);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_unparseable_success_is_a_typed_failure_not_a_crash) {
  static const char *const azResp[] = {NULL, "", "not json", "[]", "{\"results\":5}",
                                       "{\"results\":{}}", "{\"res", "\xFF\xFE"};
  bgs_engine *pEng = batching(10);
  size_t i;
  bgs_time t = 2000;
  enqueue_simple(pEng, "a", 1000);
  for (i = 0; i < sizeof(azResp) / sizeof(azResp[0]); i++) {
    Batch bt;
    char *zOut;
    char zVerdict[32], zReason[64];
    batch_claim(pEng, t, &bt);
    CHECK_EQ_I64(bt.n, 1);
    zOut = batch_report(pEng, &bt, 200, NULL, azResp[i], t);
    json_str(zOut, "$.batch", zVerdict, sizeof(zVerdict));
    CHECK_STR(zVerdict, "bad-response");
    json_str(zOut, "$.results[0].reason", zReason, sizeof(zReason));
    CHECK_STR(zReason, "bad-batch-response");
    bgs_free(zOut);
    batch_free(&bt);
    t += 7 * 86400000LL;
  }
  bgs_close(pEng);
}

TEST(test_batch_malformed_results_are_retried_individually) {
  bgs_engine *pEng = batching(10);
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1000);
  char ka[64], kb[64], zResp[512], zReason[64];
  Batch bt;
  key_of(pEng, a, ka, sizeof(ka));
  key_of(pEng, b, kb, sizeof(kb));
  batch_claim(pEng, 2000, &bt);
  snprintf(zResp, sizeof(zResp),
           "{\"results\":[7,\"abc\",null,[1],{\"key\":5},{\"key\":\"%s\",\"status\":\"200\"},{\"key\":\"%s\",\"status\":99999}]}", ka, kb);
  bgs_free(batch_report(pEng, &bt, 200, NULL, zResp, 2100));
  item_str(pEng, a, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "bad-batch-result");
  item_str(pEng, b, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "bad-batch-result");
  CHECK_EQ_I64(count_state(pEng, "waiting", 2100), 2);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_401_parks_every_item_for_credentials) {
  bgs_engine *pEng = batching(10);
  Batch bt;
  enqueue_simple(pEng, "a", 1000);
  enqueue_simple(pEng, "b", 1000);
  batch_claim(pEng, 2000, &bt);
  bgs_free(batch_report(pEng, &bt, 401, NULL, NULL, 2100));
  CHECK_EQ_I64(count_state(pEng, "auth", 2100), 2);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_stale_items_are_reported_and_the_rest_applied) {
  bgs_engine *pEng = batching(10);
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1000);
  char ka[64], kb[64], zResp[512], zErr[64];
  char *zOut;
  Batch bt;
  key_of(pEng, a, ka, sizeof(ka));
  key_of(pEng, b, kb, sizeof(kb));
  batch_claim(pEng, 2000, &bt);
  /* The lease of both ended and a single claim took them again: this batch is stale. */
  CHECK_EQ_I64(claim_ids(pEng, 1, 62000, NULL, NULL), 1);
  snprintf(zResp, sizeof(zResp), "{\"results\":[{\"key\":\"%s\",\"status\":503},{\"key\":\"%s\",\"status\":200}]}", ka, kb);
  zOut = batch_report(pEng, &bt, 200, NULL, zResp, 62001);
  json_str(zOut, "$.results[0].error", zErr, sizeof(zErr));
  CHECK_STR(zErr, "stale-outcome");
  CHECK_EQ_I64(json_int(zOut, "$.results[1].id"), b);
  bgs_free(zOut);
  CHECK_EQ_I64(count_state(pEng, "inflight", 62001), 1); /* a: the new attempt holds */
  CHECK_EQ_I64(count_state(pEng, "done", 62001), 1);    /* b: a late success counts */
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_claim_needs_a_batch_endpoint) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  unsigned char *pBody = NULL;
  size_t nBody = 0;
  enqueue_simple(pEng, "a", 1000);
  CHECK_RC(bgs_claim_batch(pEng, "q", 2000, &zOut, &pBody, &nBody), BGS_NO_BATCH);
  CHECK_RC(bgs_claim_batch(pEng, "nope", 2000, &zOut, &pBody, &nBody), BGS_UNKNOWN_QUEUE);
  CHECK(zOut == NULL && pBody == NULL);
  CHECK_EQ_I64(count_state(pEng, "pending", 2000), 1);
  /* Removing the endpoint turns batching off again. */
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":{\"url\":\"https://a.test/b\",\"maxItems\":2}}", 1));
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"q\",\"batch\":null}", 1));
  CHECK_RC(bgs_claim_batch(pEng, "q", 2000, &zOut, &pBody, &nBody), BGS_NO_BATCH);
  bgs_close(pEng);
}

TEST(test_batch_outcome_rejects_malformed_reports_and_changes_nothing) {
  static const char *const azBad[] = {
      "{\"status\":200}",
      "{\"items\":[],\"status\":200}",
      "{\"items\":[{\"id\":1}],\"status\":200}",
      "{\"items\":[{\"id\":\"1\",\"attempt\":1}],\"status\":200}",
      "{\"items\":[{\"id\":1,\"attempt\":1}],\"status\":1000}",
      "{\"items\":[{\"id\":1,\"attempt\":1}]}",
      "{\"items\":[{\"id\":1,\"attempt\":1}],\"status\":200,\"headers\":[]}",
      "{\"items\":{},\"status\":200}",
  };
  bgs_engine *pEng = batching(10);
  size_t i;
  char *zOut = NULL;
  Batch bt;
  enqueue_simple(pEng, "a", 1000);
  batch_claim(pEng, 2000, &bt);
  CHECK_RC(bgs_batch_outcome(pEng, "nope", NULL, 0, 2100, &zOut), BGS_INVALID_JSON);
  for (i = 0; i < sizeof(azBad) / sizeof(azBad[0]); i++) {
    int rc = bgs_batch_outcome(pEng, azBad[i], NULL, 0, 2100, &zOut);
    if (rc != BGS_INVALID_ARGUMENT) fprintf(stderr, "case %d: %s\n", (int)i, bgs_errname(rc));
    CHECK_RC(rc, BGS_INVALID_ARGUMENT);
    CHECK(zOut == NULL);
  }
  CHECK_EQ_I64(count_state(pEng, "inflight", 2100), 1);
  batch_free(&bt);
  bgs_close(pEng);
}

TEST(test_batch_respects_max_age_like_a_claim) {
  bgs_engine *pEng = engine_with("\"maxAgeMs\":1000,\"batch\":{\"url\":\"https://api.test/batch\",\"maxItems\":5}");
  int64_t fresh;
  Batch bt;
  enqueue_simple(pEng, "old", 1000);
  fresh = enqueue_simple(pEng, "fresh", 2500);
  batch_claim(pEng, 3000, &bt);
  CHECK_EQ_I64(bt.n, 1);
  CHECK_EQ_I64(json_int(bt.zOut, "$.items[0].id"), fresh);
  CHECK_EQ_I64(count_state(pEng, "dead", 3000), 1);
  batch_free(&bt);
  bgs_close(pEng);
}
