/* test_lease.c -- leases: never handed out twice while held, claimable again with the
   same key when they expire, every claim an attempt. */
#include "check.h"
#include "support.h"

TEST(test_lease_item_is_not_handed_out_twice_while_the_lease_holds) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4];
  bgs_time t;
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1);
  for (t = 2000; t < 2000 + 60000; t += 997) CHECK_EQ_I64(claim_ids(pEng, 4, t, aId, NULL), 0);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000 + 59999, aId, NULL), 0);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000 + 60000, aId, NULL), 1);
  bgs_close(pEng);
}

TEST(test_lease_expiry_keeps_the_idempotency_key_and_counts_attempts) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  char zKey[128], zKey2[128];
  int64_t id = enqueue_simple(pEng, "a", 1000);
  int i;
  item_str(pEng, id, "key", zKey, sizeof(zKey));
  for (i = 1; i <= 3; i++) {
    CHECK_OK(bgs_claim(pEng, "q", 4, 2000 + (i - 1) * 60000, &zOut));
    CHECK_EQ_I64(json_len(zOut, "$"), 1);
    CHECK_EQ_I64(json_int(zOut, "$[0].attempt"), i);
    json_str(zOut, "$[0].key", zKey2, sizeof(zKey2));
    CHECK_STR(zKey2, zKey);
    CHECK_EQ_I64(json_int(zOut, "$[0].leaseUntil"), 2000 + (i - 1) * 60000 + 60000);
    bgs_free(zOut);
  }
  CHECK_EQ_I64(item_int(pEng, id, "attempts"), 3);
  bgs_close(pEng);
}

TEST(test_lease_duration_comes_from_the_config) {
  bgs_config cfg = {0};
  bgs_engine *pEng;
  int64_t aId[4];
  cfg.uSeed = 1;
  cfg.nLeaseMs = 5000;
  pEng = engine_with_config(&cfg, NULL);
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1);
  CHECK_EQ_I64(claim_ids(pEng, 4, 6999, aId, NULL), 0);
  CHECK_EQ_I64(claim_ids(pEng, 4, 7000, aId, NULL), 1);
  bgs_close(pEng);
}

TEST(test_lease_report_for_an_expired_attempt_is_stale) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  int64_t id = enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 4, 2000, aId, aAt);
  CHECK_EQ_I64(claim_ids(pEng, 4, 62000, aId, aAt), 1);
  CHECK_EQ_I64(aAt[0], 2);
  CHECK_RC(report(pEng, id, 1, 503, NULL, 62001, NULL, 0), BGS_STALE);
  CHECK_EQ_I64(count_state(pEng, "inflight", 62001), 1);
  CHECK_OK(report(pEng, id, 2, 503, NULL, 62002, NULL, 0));
  CHECK_EQ_I64(count_state(pEng, "waiting", 62002), 1);
  bgs_close(pEng);
}

TEST(test_lease_late_success_for_an_attempt_never_issued_is_stale) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  int64_t id = enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 4, 2000, aId, aAt);
  CHECK_RC(report(pEng, id, 5, 200, NULL, 2001, NULL, 0), BGS_STALE);
  CHECK_RC(report(pEng, id, 0, 200, NULL, 2001, NULL, 0), BGS_STALE);
  CHECK_EQ_I64(count_state(pEng, "inflight", 2001), 1);
  bgs_close(pEng);
}

TEST(test_lease_expired_lease_counts_as_pending_and_wakes_the_host) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  int64_t aId[4];
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 4, 2000, aId, NULL);
  CHECK_OK(bgs_status(pEng, NULL, 3000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.nextWakeAt"), 62000);
  CHECK_EQ_I64(json_int(zOut, "$.counts.inflight"), 1);
  bgs_free(zOut);
  CHECK_EQ_I64(count_state(pEng, "pending", 62000), 1);
  bgs_close(pEng);
}

/* The engine remembers when the next backoff or lease ends (a lower bound) and skips the
   look at both while nothing can be due: an earlier end must still be seen at the moment
   it comes -- a retry's backoff shorter than the leases held, a lease that outlives the
   deliveries after it. */
TEST(test_lease_and_backoff_ends_are_seen_when_the_next_wake_is_remembered) {
  bgs_engine *pEng = engine_with("\"backoff\":{\"initialMs\":1000,\"jitter\":\"none\"}");
  int64_t aId[4], aAt[4], idA, idB, idC;
  idA = enqueue_simple(pEng, "a", 1000);
  idB = enqueue_simple(pEng, "b", 1000);
  idC = enqueue_simple(pEng, "c", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1); /* A, leased until 62000 */
  CHECK_EQ_I64(aId[0], idA);
  CHECK_EQ_I64(claim_ids(pEng, 1, 3000, aId, aAt), 1); /* B, leased until 63000 */
  CHECK_EQ_I64(aId[0], idB);
  /* A fails: its backoff (1 s) ends long before the leases. */
  CHECK_OK(report(pEng, idA, 1, 503, NULL, 4000, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 1, 4999, aId, aAt), 1); /* C; A still waits */
  CHECK_EQ_I64(aId[0], idC);
  CHECK_EQ_I64(claim_ids(pEng, 1, 5000, aId, aAt), 1); /* A's backoff ended */
  CHECK_EQ_I64(aId[0], idA);
  CHECK_EQ_I64(aAt[0], 2);
  /* A and C are delivered; B's lease, taken before them, still ends at 63000. */
  CHECK_OK(report(pEng, idA, 2, 200, NULL, 6000, NULL, 0));
  CHECK_OK(report(pEng, idC, 1, 200, NULL, 6000, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 1, 62999, aId, aAt), 0);
  CHECK_EQ_I64(claim_ids(pEng, 1, 63000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], idB);
  CHECK_EQ_I64(aAt[0], 2);
  bgs_close(pEng);
}
