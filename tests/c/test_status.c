/* test_status.c -- scheduling facts: counts per state and queue, the next wake-up. */
#include "check.h"
#include "support.h"

TEST(test_status_counts_per_state_and_queue) {
  bgs_engine *pEng = engine_new();
  int64_t aId[8], aAt[8];
  char *zOut = NULL;
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"other\"}", 1000));
  bgs_free(enqueue_raw(pEng, "{\"queue\":\"other\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 1000));
  enqueue_simple(pEng, "a", 1000);
  enqueue_simple(pEng, "b", 1000);
  enqueue_simple(pEng, "c", 1000);
  enqueue_simple(pEng, "d", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 3, 2000, aId, aAt), 3);
  CHECK_OK(report(pEng, aId[0], 1, 200, NULL, 2000, NULL, 0));
  CHECK_OK(report(pEng, aId[1], 1, 503, NULL, 2000, NULL, 0));
  CHECK_OK(report(pEng, aId[2], 1, 404, NULL, 2000, NULL, 0));
  CHECK_OK(bgs_status(pEng, NULL, 2000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.counts.pending"), 2);
  CHECK_EQ_I64(json_int(zOut, "$.counts.done"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.counts.waiting"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.counts.dead"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.queues.q.pending"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.queues.other.pending"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.queues.other.done"), 0);
  bgs_free(zOut);
  CHECK_OK(bgs_status(pEng, "other", 2000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.counts.pending"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.counts.dead"), 0);
  bgs_free(zOut);
  bgs_close(pEng);
}

TEST(test_status_next_wake_is_now_when_something_is_ready) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  CHECK_OK(bgs_status(pEng, NULL, 2000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.nextWakeAt"), -1); /* null: nothing to do */
  bgs_free(zOut);
  enqueue_simple(pEng, "a", 1000);
  CHECK_OK(bgs_status(pEng, NULL, 2000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.nextWakeAt"), 2000);
  bgs_free(zOut);
  bgs_close(pEng);
}

TEST(test_status_next_wake_is_the_earliest_retry) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  char *zOut = NULL;
  enqueue_simple(pEng, "a", 1000);
  enqueue_simple(pEng, "b", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 2);
  CHECK_OK(report(pEng, aId[0], 1, 503, "{\"retry-after\":\"100\"}", 2000, NULL, 0));
  CHECK_OK(report(pEng, aId[1], 1, 503, NULL, 2500, NULL, 0));
  CHECK_OK(bgs_status(pEng, NULL, 3000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.nextWakeAt"), 32500);
  bgs_free(zOut);
  /* Blocked entity members and conflicts do not wake anyone. */
  bgs_close(pEng);
}

TEST(test_status_items_behind_a_conflict_do_not_wake_the_host) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  char *zOut = NULL;
  enqueue_with(pEng, "a1", "\"entity\":\"a\"", 1000);
  enqueue_with(pEng, "a2", "\"entity\":\"a\"", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 409, NULL, 2000, NULL, 0));
  CHECK_OK(bgs_status(pEng, NULL, 3000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.nextWakeAt"), -1);
  CHECK_EQ_I64(json_int(zOut, "$.counts.pending"), 1);
  CHECK_EQ_I64(json_int(zOut, "$.counts.conflict"), 1);
  bgs_free(zOut);
  bgs_close(pEng);
}
