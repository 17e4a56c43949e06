/* test_outcome.c -- what a reported status does to an item. */
#include "check.h"
#include "support.h"

TEST(test_outcome_success_marks_done) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  char zState[32];
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], aAt[0], 201, NULL, 2100, zState, sizeof(zState)));
  CHECK_STR(zState, "done");
  CHECK_EQ_I64(count_state(pEng, "done", 2100), 1);
  CHECK_EQ_I64(claim_ids(pEng, 2, 999999, aId, aAt), 0);
  bgs_close(pEng);
}

TEST(test_outcome_failure_waits_until_its_retry_time) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  char zState[32];
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], aAt[0], 503, NULL, 2000, zState, sizeof(zState)));
  CHECK_STR(zState, "waiting");
  /* Default policy: 30 s initial delay (jitter off in these tests). */
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 29999, aId, aAt), 0);
  CHECK_EQ_I64(count_state(pEng, "waiting", 2000 + 29999), 1);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 30000, aId, aAt), 1);
  CHECK_EQ_I64(aAt[0], 2);
  bgs_close(pEng);
}

TEST(test_outcome_network_error_retries) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  char zState[32];
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 2, 2000, aId, aAt);
  CHECK_OK(report(pEng, aId[0], aAt[0], 0, NULL, 2000, zState, sizeof(zState)));
  CHECK_STR(zState, "waiting");
  bgs_close(pEng);
}

TEST(test_outcome_delays_grow_exponentially) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  bgs_time now = 2000;
  int64_t aWant[] = {30000, 60000, 120000, 240000};
  int i;
  enqueue_simple(pEng, "a", 1000);
  for (i = 0; i < 4; i++) {
    CHECK_EQ_I64(claim_ids(pEng, 2, now, aId, aAt), 1);
    CHECK_OK(report(pEng, aId[0], aAt[0], 500, NULL, now, NULL, 0));
    CHECK_EQ_I64(claim_ids(pEng, 2, now + aWant[i] - 1, aId, aAt), 0);
    now += aWant[i];
  }
  bgs_close(pEng);
}

TEST(test_outcome_stale_attempt_changes_nothing) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 2, 2000, aId, aAt);
  CHECK_RC(report(pEng, aId[0], aAt[0] + 1, 503, NULL, 2000, NULL, 0), BGS_STALE);
  CHECK_EQ_I64(count_state(pEng, "inflight", 2000), 1);
  CHECK_RC(report(pEng, 4242, 1, 200, NULL, 2000, NULL, 0), BGS_NOT_FOUND);
  bgs_close(pEng);
}

TEST(test_outcome_late_success_after_lease_expiry_still_counts) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 2, 2000, aId, aAt);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 60000, aId, aAt), 1); /* lease expired, attempt 2 */
  CHECK_OK(report(pEng, aId[0], 1, 200, NULL, 2000 + 60001, NULL, 0));
  CHECK_EQ_I64(count_state(pEng, "done", 70000), 1);
  /* The second attempt's report is now stale. */
  CHECK_RC(report(pEng, aId[0], 2, 200, NULL, 70000, NULL, 0), BGS_STALE);
  bgs_close(pEng);
}

TEST(test_outcome_rejects_malformed_reports) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  CHECK_RC(bgs_outcome(pEng, "{", NULL, 0, 1, &zOut), BGS_INVALID_JSON);
  CHECK_RC(bgs_outcome(pEng, "{\"id\":\"1\",\"attempt\":1,\"status\":200}", NULL, 0, 1, &zOut), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_outcome(pEng, "{\"id\":1,\"attempt\":1,\"status\":2000}", NULL, 0, 1, &zOut), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_outcome(pEng, "{\"id\":1,\"attempt\":1,\"status\":200,\"headers\":5}", NULL, 0, 1, &zOut), BGS_INVALID_ARGUMENT);
  CHECK(zOut == NULL);
  bgs_close(pEng);
}
