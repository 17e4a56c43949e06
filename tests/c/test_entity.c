/* test_entity.c -- strict order per entity: only the oldest unfinished item is claimable,
   and an entity that fails blocks only itself. */
#include <string.h>

#include "check.h"
#include "internal.h"
#include "support.h"

#define ENT(x) "\"entity\":\"" x "\""

TEST(test_entity_only_oldest_unfinished_item_is_claimable) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  int64_t a2 = enqueue_with(pEng, "a2", ENT("a"), 1001);
  int64_t aId[8], aAt[8];
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 0); /* a2 waits behind a1 in flight */
  CHECK_OK(report(pEng, a1, 1, 200, NULL, 2100, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 8, 2100, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a2);
  bgs_close(pEng);
}

TEST(test_entity_failing_entity_blocks_only_itself) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  int64_t a2 = enqueue_with(pEng, "a2", ENT("a"), 1000);
  int64_t b1 = enqueue_with(pEng, "b1", ENT("b"), 1000);
  int64_t p = enqueue_simple(pEng, "plain", 1000);
  int64_t b2 = enqueue_with(pEng, "b2", ENT("b"), 1000);
  int64_t aId[8], aAt[8];
  int n, i;
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1);
  CHECK_OK(report(pEng, a1, 1, 503, NULL, 2000, NULL, 0)); /* a1 backs off 30 s */
  /* Everything else flows, in order, one per entity at a time. */
  n = claim_ids(pEng, 8, 2001, aId, aAt);
  CHECK_EQ_I64(n, 2);
  CHECK_EQ_I64(aId[0], b1);
  CHECK_EQ_I64(aId[1], p);
  for (i = 0; i < n; i++) CHECK_OK(report(pEng, aId[i], aAt[i], 200, NULL, 2002, NULL, 0));
  n = claim_ids(pEng, 8, 2003, aId, aAt);
  CHECK_EQ_I64(n, 1);
  CHECK_EQ_I64(aId[0], b2);
  CHECK_OK(report(pEng, b2, 1, 200, NULL, 2004, NULL, 0));
  /* a2 is still blocked while a1 waits; when a1 is due it comes back before a2. */
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000 + 29999, aId, aAt), 0);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000 + 30000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1);
  CHECK_EQ_I64(aAt[0], 2);
  CHECK_EQ_I64(item_int(pEng, a2, "attempts"), 0);
  bgs_close(pEng);
}

TEST(test_entity_dead_letter_unblocks_the_entity) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  int64_t a2 = enqueue_with(pEng, "a2", ENT("a"), 1000);
  int64_t aId[8], aAt[8];
  char zState[32];
  claim_ids(pEng, 8, 2000, aId, aAt);
  CHECK_OK(report(pEng, a1, 1, 422, NULL, 2000, zState, sizeof(zState)));
  CHECK_STR(zState, "dead");
  CHECK_EQ_I64(claim_ids(pEng, 8, 2001, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a2);
  bgs_close(pEng);
}

TEST(test_entity_conflict_keeps_the_entity_blocked) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  int64_t a2 = enqueue_with(pEng, "a2", ENT("a"), 1000);
  int64_t b1 = enqueue_with(pEng, "b1", ENT("b"), 1000);
  int64_t aId[8], aAt[8];
  char zState[32];
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, a1, 1, 412, NULL, 2000, zState, sizeof(zState)));
  CHECK_STR(zState, "conflict");
  /* A day later: b1 goes, a2 stays behind the conflict. */
  CHECK_EQ_I64(claim_ids(pEng, 8, 86400000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], b1);
  CHECK_EQ_I64(claim_ids(pEng, 8, 86400000, aId, aAt), 0);
  CHECK_EQ_I64(item_int(pEng, a2, "attempts"), 0);
  bgs_close(pEng);
}

TEST(test_entity_auth_state_keeps_the_entity_blocked_until_released) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  int64_t a2 = enqueue_with(pEng, "a2", ENT("a"), 1000);
  int64_t b1 = enqueue_with(pEng, "b1", ENT("b"), 1000);
  int64_t aId[8], aAt[8];
  char zState[32];
  CHECK_EQ_I64(claim_ids(pEng, 1, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, a1, 1, 401, NULL, 2000, zState, sizeof(zState)));
  CHECK_STR(zState, "auth");
  CHECK_EQ_I64(claim_ids(pEng, 8, 86400000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], b1);
  CHECK_EQ_I64(claim_ids(pEng, 8, 86400000, aId, aAt), 0);
  CHECK_OK(bgs_auth_release(pEng, "q", 86400001, NULL));
  CHECK_EQ_I64(claim_ids(pEng, 8, 86400001, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1); /* a1 first, a2 still behind it */
  CHECK_OK(report(pEng, a1, aAt[0], 200, NULL, 86400002, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 8, 86400003, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a2);
  bgs_close(pEng);
}

TEST(test_entity_expired_lease_hands_out_the_same_head_again) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  int64_t aId[8], aAt[8];
  enqueue_with(pEng, "a2", ENT("a"), 1000);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 1);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000 + 60000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1);
  CHECK_EQ_I64(aAt[0], 2);
  bgs_close(pEng);
}

TEST(test_entity_priority_never_overtakes_an_older_item_of_the_entity) {
  bgs_engine *pEng = engine_new();
  int64_t a1 = enqueue_with(pEng, "a1", ENT("a") ",\"priority\":\"low\"", 1000);
  int64_t aId[8], aAt[8];
  enqueue_with(pEng, "a2", ENT("a") ",\"priority\":\"critical\"", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1);
  bgs_close(pEng);
}

TEST(test_entity_items_without_entity_are_never_blocked) {
  bgs_engine *pEng = engine_new();
  int64_t aId[8], aAt[8];
  int i;
  for (i = 0; i < 5; i++) enqueue_simple(pEng, "x", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 5);
  bgs_close(pEng);
}

TEST(test_entity_order_survives_a_reopen) {
  bgs_engine *pEng = engine_new();
  host_store s;
  int64_t a1, a2, aId[8], aAt[8];
  store_init(&s);
  a1 = enqueue_with(pEng, "a1", ENT("a"), 1000);
  a2 = enqueue_with(pEng, "a2", ENT("a"), 1000);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 1);
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2001, aId, aAt), 0);
  CHECK_OK(report(pEng, a1, 1, 204, NULL, 2002, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 8, 2003, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a2);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_entity_same_entity_in_two_queues_is_one_line) {
  bgs_engine *pEng = engine_new();
  char *zOut;
  int64_t aId[8], aAt[8];
  CHECK_OK(bgs_queue_configure(pEng, "{\"name\":\"other\"}", 1000));
  enqueue_with(pEng, "a1", ENT("a"), 1000);
  zOut = enqueue_raw(pEng, "{\"queue\":\"other\",\"method\":\"PUT\",\"url\":\"https://api.test/a\"," ENT("a") "}", NULL, 1000);
  bgs_free(zOut);
  CHECK_EQ_I64(claim_ids_in(pEng, "other", 8, 2000, aId, aAt), 0);
  CHECK_EQ_I64(claim_ids(pEng, 8, 2000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], 1, 200, NULL, 2001, NULL, 0));
  CHECK_EQ_I64(claim_ids_in(pEng, "other", 8, 2002, aId, aAt), 1);
  bgs_close(pEng);
}

/* The number of temporary B-trees that the program of zSql opens. */
static int ephemeral_opens(bgs_engine *pEng, const char *zSql) {
  sqlite3_stmt *pStmt;
  char *zExplain = sqlite3_mprintf("EXPLAIN %s", zSql);
  int n = 0;
  CHECK(sqlite3_prepare_v2(pEng->db, zExplain, -1, &pStmt, NULL) == SQLITE_OK);
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    if (strcmp((const char *)sqlite3_column_text(pStmt, 1), "OpenEphemeral") == 0) n++;
  }
  sqlite3_finalize(pStmt);
  sqlite3_free(zExplain);
  return n;
}

/* An entity's unfinished items are found through items_entity, and writing an item
   with an entity tests the index's condition without a temporary B-tree (internal.h:
   IN of five filled one at every row written, half of a cycle's work). */
TEST(test_entity_lookups_use_the_index_and_writes_no_temporary_btree) {
  bgs_engine *pEng = engine_new();
  enqueue_with(pEng, "a1", ENT("a"), 1000);
  CHECK(plan_is(pEng,
                "SELECT id FROM items WHERE entity = 'a' AND " BGS__UNFINISHED_SQL
                " ORDER BY id LIMIT 1",
                "items_entity (entity=?)"));
  CHECK_EQ_I64(ephemeral_opens(pEng, "UPDATE items SET state = 2 WHERE id = 1"), 0);
  CHECK_EQ_I64(ephemeral_opens(pEng, "DELETE FROM items WHERE id = 1"), 0);
  CHECK_EQ_I64(ephemeral_opens(pEng,
                               "INSERT INTO items(id, key, queue, method, url, headers, body_size,"
                               " priority, entity, state, head, due_at, created_at, updated_at)"
                               " VALUES (2, 'k', 'q', 'PUT', 'u', '{}', 0, 2, 'a', 0, 0, 0, 0, 0)"),
               0);
  bgs_close(pEng);
}
