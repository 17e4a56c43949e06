/* test_dead.c -- dead letters (list, retry, discard) and releasing items that wait for
   credentials. */
#include "check.h"
#include "support.h"

/* Enqueues one item and kills it with a 400; returns its id. */
static int64_t make_dead(bgs_engine *pEng, const char *zPath, const char *zExtra, bgs_time now) {
  int64_t aId[8], aAt[8];
  int64_t id = enqueue_with(pEng, zPath, zExtra, now);
  int n = claim_ids(pEng, 8, now, aId, aAt), i;
  char zState[32];
  for (i = 0; i < n; i++) {
    if (aId[i] != id) continue;
    CHECK_OK(report(pEng, id, aAt[i], 400, NULL, now, zState, sizeof(zState)));
    CHECK_STR(zState, "dead");
    return id;
  }
  CHECK(0);
  return 0;
}

TEST(test_dead_letters_are_listed_by_state) {
  bgs_engine *pEng = engine_new();
  int64_t d = make_dead(pEng, "d", NULL, 1000);
  char *zOut = NULL;
  enqueue_simple(pEng, "live", 1000);
  CHECK_OK(bgs_items(pEng, "{\"state\":\"dead\"}", &zOut));
  CHECK_EQ_I64(json_len(zOut, "$"), 1);
  CHECK_EQ_I64(json_int(zOut, "$[0].id"), d);
  CHECK_EQ_I64(json_int(zOut, "$[0].lastStatus"), 400);
  bgs_free(zOut);
  CHECK_RC(bgs_items(pEng, "{\"state\":\"zombie\"}", &zOut), BGS_INVALID_ARGUMENT);
  bgs_close(pEng);
}

TEST(test_dead_retry_resets_attempts_and_keeps_id_key_and_body) {
  bgs_engine *pEng = engine_with("\"maxAttempts\":2");
  char zKey[128], zKey2[128], zState[32];
  char *zOut = NULL;
  int64_t aId[4], aAt[4];
  int64_t id = enqueue_simple(pEng, "payload", 1000);
  item_str(pEng, id, "key", zKey, sizeof(zKey));
  claim_ids(pEng, 4, 2000, aId, aAt);
  CHECK_OK(report(pEng, id, 1, 500, NULL, 2000, NULL, 0));
  claim_ids(pEng, 4, 40000, aId, aAt);
  CHECK_OK(report(pEng, id, 2, 500, NULL, 40000, zState, sizeof(zState)));
  CHECK_STR(zState, "dead");
  CHECK_OK(bgs_dead_retry(pEng, id, 50000));
  item_str(pEng, id, "state", zState, sizeof(zState));
  CHECK_STR(zState, "pending");
  CHECK_EQ_I64(item_int(pEng, id, "attempts"), 0);
  CHECK_OK(bgs_claim(pEng, "q", 4, 50000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$[0].id"), id);
  CHECK_EQ_I64(json_int(zOut, "$[0].attempt"), 1);
  json_str(zOut, "$[0].key", zKey2, sizeof(zKey2));
  CHECK_STR(zKey2, zKey);
  bgs_free(zOut);
  CHECK_STR(body_text(pEng, id), "payload");
  /* With its attempts reset, it gets maxAttempts tries again. */
  CHECK_OK(report(pEng, id, 1, 500, NULL, 50000, zState, sizeof(zState)));
  CHECK_STR(zState, "waiting");
  bgs_close(pEng);
}

TEST(test_dead_retry_and_discard_refuse_items_that_are_not_dead) {
  bgs_engine *pEng = engine_new();
  int64_t id = enqueue_simple(pEng, "live", 1000);
  CHECK_RC(bgs_dead_retry(pEng, id, 2000), BGS_INVALID_STATE);
  CHECK_RC(bgs_dead_discard(pEng, id, 2000), BGS_INVALID_STATE);
  CHECK_RC(bgs_dead_retry(pEng, 4242, 2000), BGS_NOT_FOUND);
  CHECK_RC(bgs_dead_discard(pEng, 4242, 2000), BGS_NOT_FOUND);
  CHECK_EQ_I64(count_state(pEng, "pending", 2000), 1);
  bgs_close(pEng);
}

TEST(test_dead_discard_removes_the_item) {
  bgs_engine *pEng = engine_new();
  int64_t d = make_dead(pEng, "d", NULL, 1000);
  CHECK_OK(bgs_dead_discard(pEng, d, 2000));
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  CHECK_EQ_I64(count_state(pEng, "dead", 2000), 0);
  CHECK_RC(bgs_dead_discard(pEng, d, 2000), BGS_NOT_FOUND);
  bgs_close(pEng);
}

TEST(test_dead_retry_is_immediately_claimable_when_its_entity_is_idle) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4];
  int64_t d = make_dead(pEng, "d", "\"entity\":\"e\"", 1000);
  CHECK_OK(bgs_dead_retry(pEng, d, 2000));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1);
  CHECK_EQ_I64(aId[0], d);
  bgs_close(pEng);
}

TEST(test_dead_retry_waits_behind_the_current_head_of_its_entity) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  int64_t d = make_dead(pEng, "d", "\"entity\":\"e\"", 1000);
  int64_t e2 = enqueue_with(pEng, "e2", "\"entity\":\"e\"", 1500);
  int64_t e3 = enqueue_with(pEng, "e3", "\"entity\":\"e\"", 1500);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1); /* e2 in flight */
  CHECK_EQ_I64(aId[0], e2);
  CHECK_OK(bgs_dead_retry(pEng, d, 2100));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2100, aId, aAt), 0); /* never two of one entity */
  CHECK_OK(report(pEng, e2, 1, 200, NULL, 2200, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2300, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], d); /* the older change before e3 */
  CHECK_OK(report(pEng, d, aAt[0], 200, NULL, 2400, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2500, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], e3);
  bgs_close(pEng);
}

TEST(test_dead_discard_of_an_entity_item_leaves_the_line_moving) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4];
  int64_t d = make_dead(pEng, "d", "\"entity\":\"e\"", 1000);
  int64_t e2 = enqueue_with(pEng, "e2", "\"entity\":\"e\"", 1500);
  CHECK_OK(bgs_dead_discard(pEng, d, 1600));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1);
  CHECK_EQ_I64(aId[0], e2);
  bgs_close(pEng);
}

/* Found by fuzz_engine_calls: a dead letter sent again waits behind its entity's head
   although its id is older; discarding another dead letter of the entity then promoted
   it as well, and one claim handed out two items of the entity. */
TEST(test_dead_discard_never_makes_a_second_head_of_an_entity) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  int64_t d1 = make_dead(pEng, "d1", "\"entity\":\"e\"", 1000);
  int64_t d2 = make_dead(pEng, "d2", "\"entity\":\"e\"", 1100);
  int64_t e3 = enqueue_with(pEng, "e3", "\"entity\":\"e\"", 1200);
  CHECK_OK(bgs_dead_retry(pEng, d1, 1300)); /* behind e3, the head */
  CHECK_OK(bgs_dead_discard(pEng, d2, 1400));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1); /* one of the entity at a time */
  CHECK_EQ_I64(aId[0], e3);
  CHECK_OK(report(pEng, e3, aAt[0], 200, NULL, 2100, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2200, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], d1);
  bgs_close(pEng);
}

TEST(test_dead_auth_release_makes_waiting_items_pending) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  char *zOut = NULL;
  char zState[32];
  int64_t a = enqueue_simple(pEng, "a", 1000);
  int64_t b = enqueue_simple(pEng, "b", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 2);
  CHECK_OK(report(pEng, a, 1, 401, NULL, 2000, NULL, 0));
  CHECK_OK(report(pEng, b, 1, 401, NULL, 2000, NULL, 0));
  CHECK_EQ_I64(count_state(pEng, "auth", 2000), 2);
  CHECK_OK(bgs_auth_release(pEng, NULL, 3000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.released"), 2);
  bgs_free(zOut);
  item_str(pEng, a, "state", zState, sizeof(zState));
  CHECK_STR(zState, "pending");
  CHECK_EQ_I64(item_int(pEng, a, "attempts"), 1); /* the 401 attempt still counts */
  CHECK_EQ_I64(claim_ids(pEng, 4, 3000, aId, aAt), 2);
  CHECK_EQ_I64(aAt[0], 2);
  bgs_close(pEng);
}

TEST(test_dead_auth_release_is_per_queue) {
  bgs_engine *pEng = engine_new();
  int64_t aId[4], aAt[4];
  char *zOut = NULL;
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"other\"}", 1000));
  zOut = enqueue_raw(pEng, "{\"queue\":\"other\",\"method\":\"POST\",\"url\":\"https://a.test/\"}", NULL, 1000);
  bgs_free(zOut);
  enqueue_simple(pEng, "a", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 401, NULL, 2000, NULL, 0));
  CHECK_EQ_I64(claim_ids_in(pEng, "other", 4, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 401, NULL, 2000, NULL, 0));
  CHECK_OK(bgs_auth_release(pEng, "other", 3000, &zOut));
  CHECK_EQ_I64(json_int(zOut, "$.released"), 1);
  bgs_free(zOut);
  CHECK_EQ_I64(count_state(pEng, "auth", 3000), 1);
  CHECK_RC(bgs_auth_release(pEng, "nope", 3000, NULL), BGS_UNKNOWN_QUEUE);
  CHECK_OK(bgs_auth_release(pEng, "q", 3000, NULL));
  CHECK_EQ_I64(count_state(pEng, "auth", 3000), 0);
  bgs_close(pEng);
}

TEST(test_dead_discarded_ids_and_keys_are_never_reused) {
  bgs_engine *pEng = engine_new();
  int64_t d = make_dead(pEng, "d", NULL, 1000);
  int64_t next;
  char zKey[128];
  CHECK_OK(bgs_dead_discard(pEng, d, 2000));
  next = enqueue_simple(pEng, "next", 2001);
  CHECK(next > d);
  item_str(pEng, next, "key", zKey, sizeof(zKey));
  CHECK(strcmp(zKey, "test.1") != 0);
  bgs_close(pEng);
}
