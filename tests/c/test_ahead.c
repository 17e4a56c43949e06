/* test_ahead.c -- the head start's two engine calls: bgs_ahead names exactly what the
   next claim hands out (and until when that holds, without writing anything), and
   bgs_claim_item leases one named item only when a claim could hand it out. */
#include "check.h"
#include "support.h"

/* bgs_ahead's item id (-1: null) and validUntil (-1: null) at `now`. */
static int64_t ahead_id(bgs_engine *pEng, bgs_time now, int64_t *pnUntil) {
  char *zOut = NULL;
  int64_t id;
  CHECK_OK(bgs_ahead(pEng, "q", now, &zOut));
  id = json_int(zOut, "$.item.id");
  if (pnUntil) *pnUntil = json_int(zOut, "$.validUntil");
  bgs_free(zOut);
  return id;
}

/* bgs_claim_item's answer: the id it leased, or -1 for []. */
static int64_t claim_item(bgs_engine *pEng, int64_t id, bgs_time now, int64_t *pnAttempt) {
  char *zOut = NULL;
  int64_t got;
  CHECK_OK(bgs_claim_item(pEng, "q", id, now, &zOut));
  CHECK(json_len(zOut, "$") <= 1);
  got = json_int(zOut, "$[0].id");
  if (pnAttempt) *pnAttempt = json_int(zOut, "$[0].attempt");
  bgs_free(zOut);
  return got;
}

TEST(test_ahead_names_what_the_next_claim_hands_out) {
  bgs_engine *pEng = engine_new();
  int64_t aId[1];
  bgs_time t = 2000;
  int i;
  enqueue_simple(pEng, "plain", 1000);
  enqueue_with(pEng, "x1", "\"entity\":\"x\"", 1001);
  enqueue_with(pEng, "x2", "\"entity\":\"x\"", 1002);
  enqueue_with(pEng, "urgent", "\"priority\":\"critical\"", 1003);
  enqueue_with(pEng, "later", "\"priority\":\"low\"", 1004);
  /* Every claim (one at a time, each finished with a 2xx) takes what ahead named. */
  for (i = 0; i < 5; i++, t++) {
    int64_t id = ahead_id(pEng, t, NULL);
    CHECK(id > 0);
    CHECK_EQ_I64(claim_ids(pEng, 1, t, aId, NULL), 1);
    CHECK_EQ_I64(aId[0], id);
    CHECK_OK(report(pEng, id, 1, 200, NULL, t, NULL, 0));
  }
  CHECK_EQ_I64(ahead_id(pEng, t, NULL), -1);
  CHECK_EQ_I64(claim_ids(pEng, 1, t, aId, NULL), 0);
  bgs_close(pEng);
}

TEST(test_ahead_holds_until_the_first_wake_up_or_expiry) {
  bgs_engine *pEng = engine_with("\"maxAgeMs\":100000");
  int64_t aId[2], nUntil;
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b;
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, NULL), 1);
  CHECK_OK(report(pEng, a, 1, 503, NULL, 2000, NULL, 0)); /* waits until 32000 */
  b = enqueue_simple(pEng, "b", 3000);
  CHECK_EQ_I64(ahead_id(pEng, 3000, &nUntil), b);
  CHECK_EQ_I64(nUntil, 32000);
  CHECK_EQ_I64(ahead_id(pEng, 31999, NULL), b);
  CHECK_EQ_I64(ahead_id(pEng, 32000, NULL), -1); /* a is due again: the claim order may change */
  /* With nothing waiting, the item's own expiry bounds it: claim expires it after created + maxAge. */
  CHECK_EQ_I64(claim_ids(pEng, 2, 40000, aId, NULL), 2);
  CHECK_OK(report(pEng, a, 2, 200, NULL, 40000, NULL, 0));
  CHECK_OK(report(pEng, b, 1, 200, NULL, 40000, NULL, 0));
  b = enqueue_simple(pEng, "c", 50000);
  CHECK_EQ_I64(ahead_id(pEng, 50000, &nUntil), b);
  CHECK_EQ_I64(nUntil, 150001);
  CHECK_EQ_I64(ahead_id(pEng, 150001, NULL), -1);
  CHECK_EQ_I64(claim_item(pEng, b, 150001, NULL), -1); /* expired, as a claim would */
  CHECK_EQ_I64(count_state(pEng, "dead", 150001), 1);
  bgs_close(pEng);
}

TEST(test_ahead_changes_nothing) {
  host_store store;
  bgs_engine *pEng = engine_new();
  int nFlush;
  store_init(&store);
  enqueue_simple(pEng, "a", 1000);
  store_flush(pEng, &store);
  nFlush = store.nFlush;
  CHECK(ahead_id(pEng, 2000, NULL) > 0);
  store_flush(pEng, &store);
  CHECK_EQ_I64(store.nFlush, nFlush);
  CHECK_EQ_I64(count_state(pEng, "pending", 2000), 1);
  store_free(&store);
  bgs_close(pEng);
}

TEST(test_claim_item_leases_only_a_claimable_item) {
  bgs_engine *pEng = engine_new();
  char *zOut = NULL;
  int64_t nAttempt;
  int64_t x1 = enqueue_with(pEng, "x1", "\"entity\":\"x\"", 1000);
  int64_t x2 = enqueue_with(pEng, "x2", "\"entity\":\"x\"", 1001);
  int64_t c = enqueue_simple(pEng, "c", 1002);
  CHECK_EQ_I64(claim_item(pEng, x2, 2000, NULL), -1); /* not its entity's head */
  CHECK_EQ_I64(claim_item(pEng, c, 2000, &nAttempt), c); /* though x1 comes first */
  CHECK_EQ_I64(nAttempt, 1);
  CHECK_EQ_I64(claim_item(pEng, c, 2001, NULL), -1); /* leased */
  CHECK_EQ_I64(claim_item(pEng, 999, 2001, NULL), -1); /* no such item */
  CHECK_EQ_I64(claim_item(pEng, x1, 2002, NULL), x1);
  CHECK_EQ_I64(count_state(pEng, "inflight", 2002), 2);
  CHECK_EQ_I64(claim_item(pEng, c, 2000 + 60000, &nAttempt), c); /* the lease ran out */
  CHECK_EQ_I64(nAttempt, 2);
  CHECK_RC(bgs_claim_item(pEng, "q", 0, 3000, &zOut), BGS_INVALID_ARGUMENT);
  CHECK(zOut == NULL);
  CHECK_RC(bgs_claim_item(pEng, "nope", c, 3000, &zOut), BGS_UNKNOWN_QUEUE);
  CHECK_RC(bgs_ahead(pEng, "nope", 3000, &zOut), BGS_UNKNOWN_QUEUE);
  bgs_close(pEng);
}
