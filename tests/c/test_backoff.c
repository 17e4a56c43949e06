/* test_backoff.c -- pure delay maths and Retry-After parsing. */
#include "check.h"
#include "internal.h"
#include "support.h"

static bgs__backoff policy(int eKind, int eJitter) {
  bgs__backoff b;
  b.eKind = eKind;
  b.nInitialMs = 30000;
  b.rFactor = 2;
  b.nMaxMs = 3600000;
  b.eJitter = eJitter;
  return b;
}

TEST(test_backoff_exponential_doubles) {
  bgs__backoff b = policy(BGS__BACKOFF_EXPONENTIAL, BGS__JITTER_NONE);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 1, 1, 1), 30000);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 2, 1, 1), 60000);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 5, 1, 1), 480000);
}

TEST(test_backoff_caps_at_max_delay) {
  bgs__backoff b = policy(BGS__BACKOFF_EXPONENTIAL, BGS__JITTER_NONE);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 8, 1, 1), 3600000);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 5000, 1, 1), 3600000); /* no overflow */
}

TEST(test_backoff_linear_grows_by_initial) {
  bgs__backoff b = policy(BGS__BACKOFF_LINEAR, BGS__JITTER_NONE);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 1, 1, 1), 30000);
  CHECK_EQ_I64(bgs__backoff_delay(&b, 3, 1, 1), 90000);
}

TEST(test_backoff_jitter_stays_in_bounds_and_is_deterministic) {
  bgs__backoff full = policy(BGS__BACKOFF_EXPONENTIAL, BGS__JITTER_FULL);
  bgs__backoff equal = policy(BGS__BACKOFF_EXPONENTIAL, BGS__JITTER_EQUAL);
  int64_t i;
  int nDistinct = 0;
  int64_t prev = -1;
  for (i = 1; i <= 1000; i++) {
    int64_t f = bgs__backoff_delay(&full, 3, 7, i);
    int64_t e = bgs__backoff_delay(&equal, 3, 7, i);
    CHECK(f >= 0 && f <= 120000);
    CHECK(e >= 60000 && e <= 120000);
    CHECK_EQ_I64(f, bgs__backoff_delay(&full, 3, 7, i));
    if (f != prev) nDistinct++;
    prev = f;
  }
  CHECK(nDistinct > 900);
  CHECK(bgs__backoff_delay(&full, 3, 7, 1) != bgs__backoff_delay(&full, 3, 8, 1));
}

TEST(test_backoff_retry_after_seconds_and_dates) {
  bgs_time now = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
  CHECK_EQ_I64(bgs__retry_after_parse("120", now), now + 120000);
  CHECK_EQ_I64(bgs__retry_after_parse(" 0 ", now), now);
  CHECK_EQ_I64(bgs__retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", now), now);
  CHECK_EQ_I64(bgs__retry_after_parse("Sun, 06 Nov 1994 08:51:37 GMT", now), now + 120000);
  CHECK_EQ_I64(bgs__retry_after_parse("soon", now), -1);
  CHECK_EQ_I64(bgs__retry_after_parse("-5", now), -1);
  CHECK_EQ_I64(bgs__retry_after_parse("12abc", now), -1);
  CHECK_EQ_I64(bgs__retry_after_parse("99999999999999999999", now), -1);
  CHECK_EQ_I64(bgs__retry_after_parse("Sun, 06 Xyz 1994 08:49:37 GMT", now), -1);
  CHECK_EQ_I64(bgs__retry_after_parse("", now), -1);
}

TEST(test_backoff_retry_after_is_honoured_within_max) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 2, 2000, aId, aAt);
  CHECK_OK(report(pEng, aId[0], aAt[0], 503, "{\"Retry-After\":\"120\"}", 2000, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 119999, aId, aAt), 0);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 120000, aId, aAt), 1);
  /* A server asking for a day is held to the queue's 1 h cap. */
  CHECK_OK(report(pEng, aId[0], aAt[0], 429, "{\"retry-after\":\"86400\"}", 200000, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 2, 200000 + 3600000, aId, aAt), 1);
  bgs_close(pEng);
}

/* Fails the single item of queue "q" once per step and returns the delays chosen. */
static void delays_of(bgs_engine *pEng, int n, int64_t *aDelay) {
  int64_t aId[2], aAt[2];
  bgs_time t = 2000;
  char *zLog = NULL;
  char zPath[32];
  int i;
  enqueue_simple(pEng, "d", 1000);
  for (i = 0; i < n; i++) {
    CHECK_EQ_I64(claim_ids(pEng, 2, t, aId, aAt), 1);
    CHECK_OK(report(pEng, aId[0], aAt[0], 503, NULL, t, NULL, 0));
    t += 7 * 86400000LL;
  }
  CHECK_OK(bgs_attempts(pEng, NULL, &zLog));
  for (i = 0; i < n; i++) {
    snprintf(zPath, sizeof(zPath), "$[%d].delayMs", i);
    aDelay[i] = json_int(zLog, zPath);
  }
  bgs_free(zLog);
}

TEST(test_backoff_default_policy_is_30s_doubling_to_one_hour) {
  bgs_engine *pEng = engine_new(); /* defaults, jitter off */
  int64_t a[9];
  int64_t aWant[9] = {30000, 60000, 120000, 240000, 480000, 960000, 1920000, 3600000, 3600000};
  int i;
  delays_of(pEng, 9, a);
  for (i = 0; i < 9; i++) CHECK_EQ_I64(a[i], aWant[i]);
  bgs_close(pEng);
}

TEST(test_backoff_linear_queue_grows_by_the_initial_delay) {
  bgs_engine *pEng = engine_with("\"backoff\":{\"kind\":\"linear\",\"initialMs\":1000,\"maxMs\":3500,\"jitter\":\"none\"}");
  int64_t a[5];
  delays_of(pEng, 5, a);
  CHECK_EQ_I64(a[0], 1000);
  CHECK_EQ_I64(a[1], 2000);
  CHECK_EQ_I64(a[2], 3000);
  CHECK_EQ_I64(a[3], 3500);
  CHECK_EQ_I64(a[4], 3500);
  bgs_close(pEng);
}

TEST(test_backoff_factor_and_initial_are_configurable) {
  bgs_engine *pEng = engine_with("\"backoff\":{\"initialMs\":100,\"factor\":3,\"jitter\":\"none\"}");
  int64_t a[4];
  delays_of(pEng, 4, a);
  CHECK_EQ_I64(a[0], 100);
  CHECK_EQ_I64(a[1], 300);
  CHECK_EQ_I64(a[2], 900);
  CHECK_EQ_I64(a[3], 2700);
  bgs_close(pEng);
}

TEST(test_backoff_jitter_is_reproducible_under_the_same_seed) {
  bgs_config cfg = {0};
  bgs_engine *p1, *p2, *p3;
  int64_t a1[6], a2[6], a3[6];
  int i, nDiff = 0;
  cfg.uSeed = 99;
  p1 = engine_with_config(&cfg, "\"backoff\":{\"jitter\":\"full\"}");
  p2 = engine_with_config(&cfg, "\"backoff\":{\"jitter\":\"full\"}");
  cfg.uSeed = 100;
  p3 = engine_with_config(&cfg, "\"backoff\":{\"jitter\":\"full\"}");
  delays_of(p1, 6, a1);
  delays_of(p2, 6, a2);
  delays_of(p3, 6, a3);
  for (i = 0; i < 6; i++) {
    int64_t nCap = 30000LL << i;
    CHECK_EQ_I64(a1[i], a2[i]);
    CHECK(a1[i] >= 0 && a1[i] <= nCap);
    if (a1[i] != a3[i]) nDiff++;
  }
  CHECK(nDiff >= 5);
  bgs_close(p1);
  bgs_close(p2);
  bgs_close(p3);
}

TEST(test_backoff_equal_jitter_keeps_at_least_half_the_delay) {
  bgs_engine *pEng = engine_with("\"backoff\":{\"jitter\":\"equal\"}");
  int64_t a[6];
  int i;
  delays_of(pEng, 6, a);
  for (i = 0; i < 6; i++) {
    int64_t nCap = 30000LL << i;
    CHECK(a[i] >= nCap / 2 && a[i] <= nCap);
  }
  bgs_close(pEng);
}

TEST(test_backoff_retry_after_http_date_is_honoured) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  bgs_time now = 784111777000LL; /* Sun, 06 Nov 1994 08:49:37 GMT */
  char *zOut = NULL;
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 0, now, &zOut));
  bgs_free(zOut);
  CHECK_EQ_I64(claim_ids(pEng, 2, now, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 503, "{\"retry-after\":\"Sun, 06 Nov 1994 08:59:37 GMT\"}", now, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 2, now + 599999, aId, aAt), 0);
  CHECK_EQ_I64(claim_ids(pEng, 2, now + 600000, aId, aAt), 1);
  bgs_close(pEng);
}

TEST(test_backoff_retry_after_shorter_than_the_backoff_keeps_the_backoff) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 2, 2000, aId, aAt);
  CHECK_OK(report(pEng, aId[0], 1, 503, "{\"retry-after\":\"1\"}", 2000, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 29999, aId, aAt), 0);
  /* An invalid value is ignored. */
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000 + 30000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 2, 503, "{\"retry-after\":\"soon\"}", 40000, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 2, 40000 + 59999, aId, aAt), 0);
  CHECK_EQ_I64(claim_ids(pEng, 2, 40000 + 60000, aId, aAt), 1);
  bgs_close(pEng);
}

TEST(test_backoff_max_attempts_makes_a_dead_letter_with_a_reason) {
  bgs_engine *pEng = engine_with("\"maxAttempts\":3");
  int64_t aId[2], aAt[2];
  char zState[32], zReason[32];
  bgs_time t = 2000;
  int i;
  int64_t id = enqueue_simple(pEng, "a", 1000);
  for (i = 1; i <= 3; i++) {
    CHECK_EQ_I64(claim_ids(pEng, 2, t, aId, aAt), 1);
    CHECK_OK(report(pEng, id, i, 500, NULL, t, zState, sizeof(zState)));
    CHECK_STR(zState, i < 3 ? "waiting" : "dead");
    t += 3600000;
  }
  item_str(pEng, id, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "max-attempts");
  CHECK_EQ_I64(claim_ids(pEng, 2, t, aId, aAt), 0);
  bgs_close(pEng);
}

TEST(test_backoff_max_age_makes_a_dead_letter_when_the_retry_would_be_too_late) {
  bgs_engine *pEng = engine_with("\"maxAgeMs\":40000");
  int64_t aId[2], aAt[2];
  char zState[32], zReason[32];
  int64_t id = enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, id, 1, 503, NULL, 2000, zState, sizeof(zState))); /* due 32000 < 41000 */
  CHECK_STR(zState, "waiting");
  CHECK_EQ_I64(claim_ids(pEng, 2, 32000, aId, aAt), 1);
  CHECK_OK(report(pEng, id, 2, 503, NULL, 32000, zState, sizeof(zState))); /* due 92000 > 41000 */
  CHECK_STR(zState, "dead");
  item_str(pEng, id, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "expired");
  bgs_close(pEng);
}

TEST(test_backoff_max_age_expires_an_item_at_claim_instead_of_sending_it) {
  bgs_engine *pEng = engine_with("\"maxAgeMs\":10000");
  int64_t aId[4], aAt[4];
  char zReason[32];
  int64_t old = enqueue_with(pEng, "old", "\"entity\":\"e\"", 1000);
  int64_t next = enqueue_with(pEng, "next", "\"entity\":\"e\"", 5000);
  int64_t fresh = enqueue_simple(pEng, "fresh", 5000);
  /* At 11001 the first is past its age: it dies, its entity moves on at once. */
  CHECK_EQ_I64(claim_ids(pEng, 4, 11001, aId, aAt), 2);
  CHECK_EQ_I64(aId[0], fresh);
  CHECK_EQ_I64(aId[1], next);
  item_str(pEng, old, "state", zReason, sizeof(zReason));
  CHECK_STR(zReason, "dead");
  item_str(pEng, old, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "expired");
  CHECK_EQ_I64(item_int(pEng, old, "attempts"), 0);
  bgs_close(pEng);
}

TEST(test_backoff_max_age_at_exactly_the_limit_still_sends) {
  bgs_engine *pEng = engine_with("\"maxAgeMs\":10000");
  int64_t aId[4];
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 11000, aId, NULL), 1);
  bgs_close(pEng);
}
