/* test_coalesce.c -- merging never-attempted changes of one entity (queues with
   "coalesce": true); the rules are in bgsync.h (bgs_enqueue). */
#include "check.h"
#include "support.h"

#define REQ(method, path, extra) \
  "{\"queue\":\"q\",\"method\":\"" method "\",\"url\":\"https://api.test/" path "\",\"entity\":\"n1\"" extra "}"

static bgs_engine *coalescing(void) { return engine_with("\"coalesce\":true"); }

TEST(test_coalesce_patch_then_patch_is_one_merged_patch) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ",\"headers\":{\"x-a\":\"1\",\"x-b\":\"1\"}"), "{\"title\":\"a\",\"tags\":[1]}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ",\"headers\":{\"x-b\":\"2\"}"), "{\"body\":\"b\",\"tags\":[2]}", 1001);
  char *zOut = NULL;
  int64_t id = json_int(z1, "$.id");
  CHECK_EQ_I64(json_int(z2, "$.id"), id);
  CHECK_EQ_I64(json_int(z2, "$.coalesced"), 1);
  CHECK_EQ_I64(json_int(z1, "$.coalesced"), -1);
  CHECK_EQ_I64(items_count(pEng, NULL), 1);
  CHECK(same_json(body_text(pEng, id), "{\"title\":\"a\",\"tags\":[2],\"body\":\"b\"}"));
  CHECK_OK(bgs_claim(pEng, "q", 4, 2000, &zOut));
  {
    char zH[64];
    json_str(zOut, "$[0].headers.x-a", zH, sizeof(zH));
    CHECK_STR(zH, "1");
    json_str(zOut, "$[0].headers.x-b", zH, sizeof(zH));
    CHECK_STR(zH, "2");
  }
  bgs_free(zOut);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

/* Applying the merged patch must equal applying both in order: nulls still delete. */
TEST(test_coalesce_merged_patch_keeps_deletions) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1,\"b\":{\"c\":1,\"x\":5},\"k\":7}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":null,\"b\":{\"d\":2,\"x\":null},\"n\":{\"m\":null}}", 1001);
  int64_t id = json_int(z1, "$.id");
  CHECK_EQ_I64(json_int(z2, "$.id"), id);
  CHECK(same_json(body_text(pEng, id), "{\"a\":null,\"b\":{\"c\":1,\"x\":null,\"d\":2},\"k\":7,\"n\":{\"m\":null}}"));
  CHECK(!same_json(body_text(pEng, id), "{\"b\":{\"c\":1,\"d\":2},\"k\":7}")); /* what plain json_patch gives */
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_put_replaces_a_pending_patch_or_put) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PUT", "notes/1", ",\"headers\":{\"content-type\":\"text/plain\"}"), "whole", 1001);
  char *z3 = enqueue_raw(pEng, REQ("PUT", "notes/1", ""), "newer", 1002);
  char *zOut = NULL;
  char zMethod[16];
  int64_t id = json_int(z1, "$.id");
  CHECK_EQ_I64(json_int(z2, "$.id"), id);
  CHECK_EQ_I64(json_int(z3, "$.id"), id);
  CHECK_STR(body_text(pEng, id), "newer");
  CHECK_OK(bgs_claim(pEng, "q", 4, 2000, &zOut));
  CHECK_EQ_I64(json_len(zOut, "$"), 1);
  json_str(zOut, "$[0].method", zMethod, sizeof(zMethod));
  CHECK_STR(zMethod, "PUT");
  CHECK_EQ_I64(json_int(zOut, "$[0].bodySize"), 5);
  bgs_free(zOut);
  bgs_free(z1);
  bgs_free(z2);
  bgs_free(z3);
  bgs_close(pEng);
}

TEST(test_coalesce_create_then_patch_is_one_create_with_the_patch_applied) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"title\":\"draft\",\"pinned\":true}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/tmp-1", ""), "{\"title\":\"final\",\"pinned\":null}", 1001);
  char zMethod[16], zUrl[64];
  int64_t id = json_int(z1, "$.id");
  CHECK_EQ_I64(json_int(z2, "$.id"), id);
  CHECK(same_json(body_text(pEng, id), "{\"title\":\"final\"}"));
  item_str(pEng, id, "method", zMethod, sizeof(zMethod));
  CHECK_STR(zMethod, "POST");
  item_str(pEng, id, "url", zUrl, sizeof(zUrl));
  CHECK_STR(zUrl, "https://api.test/notes");
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_create_then_put_is_one_create_with_the_new_body) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"v\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PUT", "notes/tmp-1", ""), "{\"v\":2}", 1001);
  char zMethod[16];
  int64_t id = json_int(z1, "$.id");
  CHECK_EQ_I64(json_int(z2, "$.id"), id);
  CHECK_STR(body_text(pEng, id), "{\"v\":2}");
  item_str(pEng, id, "method", zMethod, sizeof(zMethod));
  CHECK_STR(zMethod, "POST");
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_create_then_delete_cancels_both) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"v\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("DELETE", "notes/tmp-1", ""), NULL, 1001);
  int64_t other = enqueue_simple(pEng, "unrelated", 1002);
  int64_t aId[4];
  CHECK_EQ_I64(json_int(z2, "$.id"), -1); /* null */
  CHECK_EQ_I64(json_len(z2, "$.cancelled"), 1);
  CHECK_EQ_I64(json_int(z2, "$.cancelled[0]"), json_int(z1, "$.id"));
  CHECK_EQ_I64(items_count(pEng, NULL), 1);
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1);
  CHECK_EQ_I64(aId[0], other);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_cancelled_create_ids_are_never_reused) {
  /* The cancelled create is the newest item of the store: its id (and key) must not
     come back with the next enqueue, after a reload too. */
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"v\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("DELETE", "notes/tmp-1", ""), NULL, 1001);
  int64_t created = json_int(z1, "$.id");
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  CHECK(enqueue_simple(pEng, "after", 1002) > created);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_create_then_unmergeable_changes_then_delete_cancels_all) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"v\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/t", ""), "not json", 1001); /* appended */
  char *z3 = enqueue_raw(pEng, REQ("DELETE", "notes/t", ""), NULL, 1002);
  CHECK(json_int(z2, "$.id") != json_int(z1, "$.id"));
  CHECK_EQ_I64(json_len(z3, "$.cancelled"), 2);
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  bgs_free(z1);
  bgs_free(z2);
  bgs_free(z3);
  bgs_close(pEng);
}

TEST(test_coalesce_never_touches_an_item_that_was_attempted) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000);
  int64_t id = json_int(z1, "$.id"), aId[4], aAt[4];
  char *z2, *z3, *z4;
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1); /* in flight */
  z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"b\":2}", 2001);
  CHECK(json_int(z2, "$.id") != id);
  CHECK_STR(body_text(pEng, id), "{\"a\":1}");
  /* Failed and waiting: still attempted, still untouched; the new tail merges instead. */
  CHECK_OK(report(pEng, id, 1, 503, NULL, 2002, NULL, 0));
  z3 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"c\":3}", 2003);
  CHECK_EQ_I64(json_int(z3, "$.id"), json_int(z2, "$.id"));
  CHECK_STR(body_text(pEng, id), "{\"a\":1}");
  CHECK(same_json(body_text(pEng, json_int(z2, "$.id")), "{\"b\":2,\"c\":3}"));
  /* A delete after an attempted create is a real request. */
  z4 = enqueue_raw(pEng, REQ("DELETE", "notes/1", ""), NULL, 2004);
  CHECK(json_int(z4, "$.id") > 0);
  CHECK_EQ_I64(items_count(pEng, NULL), 3);
  bgs_free(z1);
  bgs_free(z2);
  bgs_free(z3);
  bgs_free(z4);
  bgs_close(pEng);
}

TEST(test_coalesce_delete_after_an_attempted_create_is_kept) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"v\":1}", 1000);
  int64_t aId[4], aAt[4];
  char *z2;
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 0, NULL, 2001, NULL, 0)); /* may have reached the server */
  z2 = enqueue_raw(pEng, REQ("DELETE", "notes/1", ""), NULL, 2002);
  CHECK(json_int(z2, "$.id") > 0);
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_is_off_unless_the_queue_opts_in) {
  bgs_engine *pEng = engine_new();
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"b\":1}", 1001);
  CHECK(json_int(z1, "$.id") != json_int(z2, "$.id"));
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_needs_the_same_url_and_json_objects) {
  bgs_engine *pEng = coalescing();
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000));
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1/meta", ""), "{\"a\":1}", 1001));
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1/meta", ""), "[1,2]", 1002));
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1/meta", ""), "{\"b\":1}", 1003));
  bgs_free(enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"a\":1}", 1004));
  bgs_free(enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"a\":1}", 1005)); /* POSTs never merge */
  CHECK_EQ_I64(items_count(pEng, NULL), 6);
  bgs_close(pEng);
}

TEST(test_coalesce_only_merges_within_one_entity) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, "{\"queue\":\"q\",\"method\":\"PATCH\",\"url\":\"https://api.test/n\",\"entity\":\"a\"}", "{\"a\":1}", 1000);
  char *z2 = enqueue_raw(pEng, "{\"queue\":\"q\",\"method\":\"PATCH\",\"url\":\"https://api.test/n\",\"entity\":\"b\"}", "{\"a\":2}", 1000);
  char *z3 = enqueue_raw(pEng, "{\"queue\":\"q\",\"method\":\"PATCH\",\"url\":\"https://api.test/n\"}", "{\"a\":3}", 1000);
  CHECK(json_int(z1, "$.id") != json_int(z2, "$.id"));
  CHECK_EQ_I64(items_count(pEng, NULL), 3);
  bgs_free(z1);
  bgs_free(z2);
  bgs_free(z3);
  bgs_close(pEng);
}

TEST(test_coalesce_takes_the_higher_priority) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ",\"priority\":\"low\""), "{\"a\":1}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ",\"priority\":\"critical\""), "{\"b\":1}", 1001);
  char zPri[16];
  item_str(pEng, json_int(z1, "$.id"), "priority", zPri, sizeof(zPri));
  CHECK_STR(zPri, "critical");
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_falls_back_to_append_when_the_merge_is_too_large) {
  bgs_engine *pEng = engine_with("\"coalesce\":true,\"maxBodyBytes\":20");
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":\"0123456\"}", 1000);
  char *z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"b\":\"0123456\"}", 1001);
  CHECK(json_int(z1, "$.id") != json_int(z2, "$.id"));
  CHECK_STR(body_text(pEng, json_int(z1, "$.id")), "{\"a\":\"0123456\"}");
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

TEST(test_coalesce_merges_into_a_full_queue) {
  bgs_engine *pEng = engine_with("\"coalesce\":true,\"maxItems\":1");
  char *zOut = NULL;
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000));
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"b\":1}", 1001));
  CHECK_RC(bgs_enqueue(pEng, REQ("POST", "notes", ""), NULL, 0, 1002, &zOut), BGS_QUEUE_FULL);
  CHECK_EQ_I64(items_count(pEng, NULL), 1);
  bgs_close(pEng);
}

TEST(test_coalesce_keeps_the_merged_item_in_its_place_in_line) {
  bgs_engine *pEng = coalescing();
  int64_t aId[4];
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000);
  int64_t other = enqueue_simple(pEng, "other", 1001);
  bgs_free(enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"b\":1}", 1002));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 2);
  CHECK_EQ_I64(aId[0], json_int(z1, "$.id"));
  CHECK_EQ_I64(aId[1], other);
  bgs_free(z1);
  bgs_close(pEng);
}

TEST(test_coalesce_never_cancels_a_dead_letter_that_was_sent_again) {
  bgs_engine *pEng = coalescing();
  char *z1 = enqueue_raw(pEng, REQ("POST", "notes", ""), "{\"v\":1}", 1000);
  int64_t id = json_int(z1, "$.id"), aId[4], aAt[4];
  char *z2;
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, id, 1, 400, NULL, 2001, NULL, 0));
  CHECK_OK(bgs_dead_retry(pEng, id, 2002)); /* attempts back to 0, but it was sent */
  z2 = enqueue_raw(pEng, REQ("DELETE", "notes/1", ""), NULL, 2003);
  CHECK(json_int(z2, "$.id") > 0);
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}

/* Found by fuzz_engine_calls: an item handed out whose lease ran out without an outcome
   (the worker died mid-request) has no status; once expired and sent again, its attempts
   were 0 and its status NULL, so it looked fresh and a later PATCH merged into it -- a
   body rewritten under a key the server may already have applied. */
TEST(test_coalesce_never_touches_a_dead_letter_that_was_handed_out_without_an_outcome) {
  bgs_engine *pEng = engine_with("\"coalesce\":true,\"maxAgeMs\":100000");
  char *z1 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"a\":1}", 1000);
  int64_t id = json_int(z1, "$.id"), aId[4];
  char *z2;
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, NULL), 1); /* no outcome: the lease runs out */
  CHECK_EQ_I64(claim_ids(pEng, 4, 200000, aId, NULL), 0); /* too old: a dead letter */
  CHECK_EQ_I64(items_count(pEng, "{\"state\":\"dead\"}"), 1);
  CHECK_OK(bgs_dead_retry(pEng, id, 200001));
  z2 = enqueue_raw(pEng, REQ("PATCH", "notes/1", ""), "{\"b\":2}", 200002);
  CHECK(json_int(z2, "$.id") != id);
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  bgs_free(z1);
  bgs_free(z2);
  bgs_close(pEng);
}
