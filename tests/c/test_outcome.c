/* test_outcome.c -- what a reported status does to an item. */
#include <stdio.h>

#include "check.h"
#include "support.h"
#include "internal.h"

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

TEST(test_outcome_retryable_statuses_back_off) {
  static const int aStatus[] = {0, 408, 425, 429, 500, 502, 503, 504, 599};
  bgs_engine *pEng = engine_new();
  size_t i;
  for (i = 0; i < sizeof(aStatus) / sizeof(aStatus[0]); i++) {
    int64_t aId[2], aAt[2];
    char zState[32], zReason[32];
    int64_t id = enqueue_simple(pEng, "r", 1000);
    CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
    CHECK_EQ_I64(aId[0], id);
    CHECK_OK(report(pEng, id, 1, aStatus[i], NULL, 2000, zState, sizeof(zState)));
    CHECK_STR(zState, "waiting");
    item_str(pEng, id, "reason", zReason, sizeof(zReason));
    CHECK_STR(zReason, "retry");
    CHECK_EQ_I64(item_int(pEng, id, "lastStatus"), aStatus[i]);
  }
  bgs_close(pEng);
}

TEST(test_outcome_409_and_412_park_the_item_in_conflict) {
  bgs_engine *pEng = engine_new();
  int s;
  for (s = 409; s <= 412; s += 3) {
    int64_t aAt[2];
    char zState[32];
    int64_t id = enqueue_simple(pEng, "c", 1000), aId[2];
    CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
    CHECK_OK(report(pEng, id, 1, s, NULL, 2000, zState, sizeof(zState)));
    CHECK_STR(zState, "conflict");
  }
  CHECK_EQ_I64(count_state(pEng, "conflict", 99999999), 2);
  bgs_close(pEng);
}

TEST(test_outcome_401_waits_for_credentials_and_never_dies_of_it) {
  bgs_engine *pEng = engine_with("\"maxAttempts\":1,\"maxAgeMs\":10000");
  int64_t aId[2], aAt[2];
  char zState[32], zReason[32];
  int64_t id = enqueue_simple(pEng, "u", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, id, 1, 401, NULL, 2000, zState, sizeof(zState)));
  CHECK_STR(zState, "auth");
  item_str(pEng, id, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "auth-required");
  CHECK_EQ_I64(claim_ids(pEng, 2, 5000000, aId, aAt), 0);
  CHECK_EQ_I64(count_state(pEng, "auth", 5000000), 1);
  CHECK_EQ_I64(count_state(pEng, "dead", 5000000), 0);
  bgs_close(pEng);
}

TEST(test_outcome_other_statuses_make_dead_letters_with_a_reason) {
  static const struct {
    int iStatus;
    const char *zReason;
  } aCase[] = {{400, "rejected"}, {403, "rejected"}, {404, "rejected"}, {410, "rejected"},
               {422, "rejected"}, {301, "unexpected-status"}, {100, "unexpected-status"}};
  bgs_engine *pEng = engine_new();
  size_t i;
  for (i = 0; i < sizeof(aCase) / sizeof(aCase[0]); i++) {
    int64_t aId[2], aAt[2];
    char zState[32], zReason[32];
    int64_t id = enqueue_simple(pEng, "d", 1000);
    CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
    CHECK_OK(report(pEng, id, 1, aCase[i].iStatus, NULL, 2000, zState, sizeof(zState)));
    CHECK_STR(zState, "dead");
    item_str(pEng, id, "reason", zReason, sizeof(zReason));
    CHECK_STR(zReason, aCase[i].zReason);
  }
  bgs_close(pEng);
}

/* The glue's own refusal (an origin no longer allowed): never sent, so no retry can help. */
TEST(test_outcome_refused_by_the_glue_is_a_dead_letter_with_its_reason) {
  static const char *aBad[] = {"\"\"", "\"Origin\"", "\"a b\"", "7",
                               "\"0123456789012345678901234567890123456789x\""};
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  char zJson[160], zState[32], zReason[48];
  char *zOut = NULL;
  size_t i;
  int64_t id = enqueue_simple(pEng, "r", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 2, 2000, aId, aAt), 1);
  /* A bad reason is refused and changes nothing: the item stays in flight. */
  for (i = 0; i < sizeof(aBad) / sizeof(aBad[0]); i++) {
    snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":1,\"status\":403,\"refused\":%s}",
             (long long)id, aBad[i]);
    CHECK_RC(bgs_outcome(pEng, zJson, NULL, 0, 2000, &zOut), BGS_INVALID_ARGUMENT);
    CHECK(zOut == NULL);
  }
  item_str(pEng, id, "state", zState, sizeof(zState));
  CHECK_STR(zState, "inflight");
  /* Whatever the status -- even a retryable 0 -- the refusal makes it dead, with its reason. */
  snprintf(zJson, sizeof(zJson),
           "{\"id\":%lld,\"attempt\":1,\"status\":0,\"refused\":\"origin-not-allowed\"}", (long long)id);
  CHECK_OK(bgs_outcome(pEng, zJson, NULL, 0, 2000, &zOut));
  json_str(zOut, "$.state", zState, sizeof(zState));
  CHECK_STR(zState, "dead");
  json_str(zOut, "$.reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "origin-not-allowed");
  bgs_free(zOut);
  item_str(pEng, id, "reason", zReason, sizeof(zReason));
  CHECK_STR(zReason, "origin-not-allowed");
  bgs_close(pEng);
}

TEST(test_outcome_every_attempt_is_logged_with_time_status_and_delay) {
  bgs_engine *pEng = engine_new();
  int64_t aId[2], aAt[2];
  char *zLog = NULL;
  char zState[32];
  int64_t id = enqueue_simple(pEng, "l", 1000);
  claim_ids(pEng, 2, 2000, aId, aAt);
  CHECK_OK(report(pEng, id, 1, 503, NULL, 2500, NULL, 0));
  claim_ids(pEng, 2, 32500, aId, aAt);
  CHECK_OK(report(pEng, id, 2, 0, NULL, 33000, NULL, 0));
  claim_ids(pEng, 2, 93000, aId, aAt);
  CHECK_OK(report(pEng, id, 3, 201, NULL, 93100, NULL, 0));
  CHECK_OK(bgs_attempts(pEng, NULL, &zLog));
  CHECK_EQ_I64(json_len(zLog, "$"), 3);
  CHECK_EQ_I64(json_int(zLog, "$[0].id"), id);
  CHECK_EQ_I64(json_int(zLog, "$[0].attempt"), 1);
  CHECK_EQ_I64(json_int(zLog, "$[0].at"), 2500);
  CHECK_EQ_I64(json_int(zLog, "$[0].status"), 503);
  CHECK_EQ_I64(json_int(zLog, "$[0].delayMs"), 30000);
  json_str(zLog, "$[0].state", zState, sizeof(zState));
  CHECK_STR(zState, "waiting");
  CHECK_EQ_I64(json_int(zLog, "$[1].status"), 0);
  CHECK_EQ_I64(json_int(zLog, "$[1].delayMs"), 60000);
  CHECK_EQ_I64(json_int(zLog, "$[2].status"), 201);
  CHECK_EQ_I64(json_int(zLog, "$[2].delayMs"), -1); /* null: no delay chosen */
  json_str(zLog, "$[2].state", zState, sizeof(zState));
  CHECK_STR(zState, "done");
  bgs_free(zLog);
  bgs_close(pEng);
}

TEST(test_outcome_attempt_log_filters_by_item_and_limit) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  char *zLog = NULL;
  char zFilter[64];
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1000);
  bgs_time t = 2000;
  int i;
  for (i = 0; i < 3; i++) {
    CHECK_EQ_I64(claim_ids(pEng, 4, t, aId, aAt), 2);
    CHECK_OK(report(pEng, a, aAt[0], 500, NULL, t, NULL, 0));
    CHECK_OK(report(pEng, b, aAt[1], 500, NULL, t, NULL, 0));
    t += 3600000;
  }
  snprintf(zFilter, sizeof(zFilter), "{\"id\":%lld}", (long long)b);
  CHECK_OK(bgs_attempts(pEng, zFilter, &zLog));
  CHECK_EQ_I64(json_len(zLog, "$"), 3);
  CHECK_EQ_I64(json_int(zLog, "$[2].id"), b);
  CHECK_EQ_I64(json_int(zLog, "$[2].attempt"), 3);
  bgs_free(zLog);
  CHECK_OK(bgs_attempts(pEng, "{\"limit\":2}", &zLog));
  CHECK_EQ_I64(json_len(zLog, "$"), 2); /* the newest two, oldest first */
  CHECK_EQ_I64(json_int(zLog, "$[0].id"), a);
  CHECK_EQ_I64(json_int(zLog, "$[1].id"), b);
  CHECK_EQ_I64(json_int(zLog, "$[1].attempt"), 3);
  bgs_free(zLog);
  bgs_close(pEng);
}

TEST(test_outcome_attempt_log_is_bounded) {
  bgs_config cfg = {0};
  bgs_engine *pEng;
  int64_t aId[2], aAt[2];
  char *zLog = NULL;
  bgs_time t = 2000;
  int i;
  cfg.uSeed = 1;
  cfg.nMaxAttemptLog = 5;
  pEng = engine_with_config(&cfg, NULL);
  enqueue_simple(pEng, "a", 1000);
  for (i = 0; i < 8; i++) {
    CHECK_EQ_I64(claim_ids(pEng, 2, t, aId, aAt), 1);
    CHECK_OK(report(pEng, aId[0], aAt[0], 503, NULL, t, NULL, 0));
    t += 3600000;
  }
  CHECK_OK(bgs_attempts(pEng, "{\"limit\":100}", &zLog));
  CHECK_EQ_I64(json_len(zLog, "$"), 5);
  CHECK_EQ_I64(json_int(zLog, "$[0].attempt"), 4);
  CHECK_EQ_I64(json_int(zLog, "$[4].attempt"), 8);
  bgs_free(zLog);
  bgs_close(pEng);
}

/* Rows in the attempts table, whatever bgs_attempts shows. */
static int64_t attempt_rows(bgs_engine *pEng) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT count(*) FROM attempts");
  int64_t n;
  CHECK(pStmt != NULL && sqlite3_step(pStmt) == SQLITE_ROW);
  n = sqlite3_column_int64(pStmt, 0);
  sqlite3_reset(pStmt);
  return n;
}

/* The oldest entries are deleted BGS__ATTEMPT_TRIM at a time (outcome.c), so the table
   may hold more than nMaxAttemptLog between trims; the log as listed, for all items or
   one, and over a reopen with another bound, is always the newest nMaxAttemptLog. */
TEST(test_outcome_attempt_log_lists_the_newest_between_trims) {
  bgs_config cfg = {0};
  bgs_engine *pEng;
  host_store s;
  int64_t aId[1], aAt[1], idLast = 0;
  char *zLog = NULL;
  int i;
  cfg.uSeed = 1;
  cfg.nMaxAttemptLog = 5;
  pEng = engine_with_config(&cfg, NULL);
  store_init(&s);
  for (i = 1; i <= 3 * BGS__ATTEMPT_TRIM + 7; i++) {
    enqueue_simple(pEng, "a", 1000 + i);
    CHECK_EQ_I64(claim_ids(pEng, 1, 1000 + i, aId, aAt), 1);
    CHECK_OK(report(pEng, aId[0], aAt[0], 200, NULL, 1000 + i, NULL, 0));
    idLast = aId[0];
    CHECK(attempt_rows(pEng) < 5 + BGS__ATTEMPT_TRIM);
    CHECK_OK(bgs_attempts(pEng, "{\"limit\":100000}", &zLog));
    CHECK_EQ_I64(json_len(zLog, "$"), i < 5 ? i : 5);
    CHECK_EQ_I64(json_int(zLog, "$[0].seq"), i < 5 ? 1 : i - 4);
    bgs_free(zLog);
  }
  CHECK(attempt_rows(pEng) > 5); /* between trims: the table holds more than it lists */
  /* One item's entries: only while they are among the newest five. */
  CHECK_OK(bgs_attempts(pEng, "{\"id\":1}", &zLog));
  CHECK_STR(zLog, "[]");
  bgs_free(zLog);
  CHECK_OK(bgs_attempts(pEng, "{\"limit\":2}", &zLog));
  CHECK_EQ_I64(json_len(zLog, "$"), 2);
  CHECK_EQ_I64(json_int(zLog, "$[1].id"), idLast);
  bgs_free(zLog);
  /* Reopened with a smaller bound: the newest three, before any trim ran under it. */
  store_flush(pEng, &s);
  bgs_close(pEng);
  cfg.nMaxAttemptLog = 3;
  pEng = NULL;
  CHECK_OK(bgs_open(store_image(&s), &cfg, 5000, &pEng));
  CHECK_OK(bgs_attempts(pEng, "{\"limit\":100000}", &zLog));
  CHECK_EQ_I64(json_len(zLog, "$"), 3);
  bgs_free(zLog);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_outcome_attempt_log_rejects_bad_filters) {
  bgs_engine *pEng = engine_new();
  char *zLog = NULL;
  CHECK_RC(bgs_attempts(pEng, "[]", &zLog), BGS_INVALID_JSON);
  CHECK_RC(bgs_attempts(pEng, "{\"id\":\"7\"}", &zLog), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_attempts(pEng, "{\"limit\":0}", &zLog), BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_attempts(pEng, "{\"limit\":1.5}", &zLog), BGS_INVALID_ARGUMENT);
  CHECK(zLog == NULL);
  CHECK_OK(bgs_attempts(pEng, "{}", &zLog));
  CHECK_STR(zLog, "[]");
  bgs_free(zLog);
  bgs_close(pEng);
}
