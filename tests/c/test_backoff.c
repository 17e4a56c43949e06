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
