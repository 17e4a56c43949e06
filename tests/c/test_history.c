/* test_history.c -- delivered items as bounded history (queue option keepDone): the
   oldest done items beyond keepDone go, per queue, on every path that delivers; nothing
   unfinished or dead goes; ids are never given again; the store stops growing. */
#include "check.h"
#include "internal.h"
#include "support.h"

/* Enqueues a POST to https://api.test/<zPath> in zQueue; returns its id. */
static int64_t enqueue_in(bgs_engine *pEng, const char *zQueue, const char *zPath, bgs_time now) {
  char zJson[256];
  char *zOut;
  int64_t id;
  snprintf(zJson, sizeof(zJson),
           "{\"queue\":\"%s\",\"method\":\"POST\",\"url\":\"https://api.test/%s\"}", zQueue, zPath);
  zOut = enqueue_raw(pEng, zJson, zPath, now);
  id = json_int(zOut, "$.id");
  bgs_free(zOut);
  return id;
}

/* Enqueues one item in zQueue, claims it and reports a 200; returns its id. */
static int64_t deliver_in(bgs_engine *pEng, const char *zQueue, const char *zPath, bgs_time now) {
  int64_t id = enqueue_in(pEng, zQueue, zPath, now);
  int64_t aId[1], aAt[1];
  char zState[32];
  CHECK_EQ_I64(claim_ids_in(pEng, zQueue, 1, now, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], id);
  CHECK_OK(report(pEng, id, aAt[0], 200, NULL, now, zState, sizeof(zState)));
  CHECK_STR(zState, "done"); /* the decision still says done, also when it is pruned at once */
  return id;
}

static int64_t deliver(bgs_engine *pEng, const char *zPath, bgs_time now) {
  return deliver_in(pEng, "q", zPath, now);
}

/* 1 when bgs_items still lists item id. */
static int item_exists(bgs_engine *pEng, int64_t id) {
  char zState[32];
  item_str(pEng, id, "state", zState, sizeof(zState));
  return zState[0] != 0;
}

static int64_t done_in(bgs_engine *pEng, const char *zQueue) {
  char zFilter[128];
  snprintf(zFilter, sizeof(zFilter), "{\"queue\":\"%s\",\"state\":\"done\"}", zQueue);
  return items_count(pEng, zFilter);
}

static void configure(bgs_engine *pEng, const char *zJson) {
  int rc = bgs_queue_configure(pEng, zJson, 1000);
  if (rc != BGS_OK) fprintf(stderr, "configure %s: %s\n", zJson, bgs_errmsg(pEng));
  CHECK_OK(rc);
}

TEST(test_history_drops_the_oldest_delivered_items_beyond_keep_done_per_queue) {
  bgs_engine *pEng = engine_with("\"keepDone\":3");
  int64_t aQ[6], aR[2];
  int i;
  configure(pEng, "{\"name\":\"r\",\"keepDone\":3}");
  /* r's history is older (lower ids) than q's: a prune of q must not reach it. */
  aR[0] = deliver_in(pEng, "r", "r0", 1000);
  aR[1] = deliver_in(pEng, "r", "r1", 1001);
  for (i = 0; i < 6; i++) {
    char zPath[16];
    snprintf(zPath, sizeof(zPath), "q%d", i);
    aQ[i] = deliver(pEng, zPath, 2000 + i);
    CHECK_EQ_I64(done_in(pEng, "q"), i + 1 < 3 ? i + 1 : 3);
  }
  for (i = 0; i < 3; i++) CHECK(!item_exists(pEng, aQ[i])); /* oldest first */
  for (i = 3; i < 6; i++) CHECK(item_exists(pEng, aQ[i]));
  CHECK(item_exists(pEng, aR[0]) && item_exists(pEng, aR[1]));
  CHECK_EQ_I64(done_in(pEng, "r"), 2);
  CHECK_EQ_I64(count_state(pEng, "done", 9000), 5);
  /* A lower keepDone applies at the queue's next delivery. */
  configure(pEng, "{\"name\":\"q\",\"keepDone\":1}");
  CHECK_EQ_I64(done_in(pEng, "q"), 3);
  aQ[0] = deliver(pEng, "q6", 9000);
  CHECK_EQ_I64(done_in(pEng, "q"), 1);
  CHECK(item_exists(pEng, aQ[0]));
  CHECK_EQ_I64(done_in(pEng, "r"), 2);
  bgs_close(pEng);
}

TEST(test_history_keep_done_zero_keeps_no_delivered_item) {
  bgs_engine *pEng = engine_with("\"keepDone\":0");
  int64_t a = deliver(pEng, "a", 1000);
  int64_t b = deliver(pEng, "b", 1001);
  CHECK(!item_exists(pEng, a) && !item_exists(pEng, b));
  CHECK_EQ_I64(count_state(pEng, "done", 2000), 0);
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  /* The attempt log is a separate bounded record: it still tells what happened. */
  {
    char *zLog = NULL, zFilter[64];
    snprintf(zFilter, sizeof(zFilter), "{\"id\":%lld}", (long long)b);
    CHECK_OK(bgs_attempts(pEng, zFilter, &zLog));
    CHECK_EQ_I64(json_len(zLog, "$"), 1);
    CHECK_EQ_I64(json_int(zLog, "$[0].id"), b);
    bgs_free(zLog);
  }
  bgs_close(pEng);
}

TEST(test_history_default_keeps_the_newest_100_delivered_items) {
  bgs_engine *pEng = engine_new(); /* keepDone never set */
  int64_t aId[130];
  int i;
  for (i = 0; i < 130; i++) aId[i] = deliver(pEng, "x", 1000 + i);
  CHECK_EQ_I64(count_state(pEng, "done", 5000), 100);
  CHECK(!item_exists(pEng, aId[29]));
  CHECK(item_exists(pEng, aId[30]));
  CHECK(item_exists(pEng, aId[129]));
  bgs_close(pEng);
}

TEST(test_history_never_prunes_dead_conflict_auth_waiting_inflight_or_pending_items) {
  bgs_engine *pEng = engine_with("\"keepDone\":0");
  int64_t aId[8], aAt[8], id, pending;
  char zState[32];
  int n, i;
  /* One item per state, older than the deliveries that follow (inside the pruned range). */
  int64_t dead = enqueue_simple(pEng, "dead", 1000);
  int64_t conflict = enqueue_simple(pEng, "conflict", 1000);
  int64_t auth = enqueue_simple(pEng, "auth", 1000);
  int64_t waiting = enqueue_simple(pEng, "waiting", 1000);
  int64_t inflight = enqueue_simple(pEng, "inflight", 1000);
  n = claim_ids(pEng, 8, 2000, aId, aAt);
  CHECK_EQ_I64(n, 5);
  for (i = 0; i < n; i++) {
    if (aId[i] == dead) CHECK_OK(report(pEng, dead, aAt[i], 400, NULL, 2000, NULL, 0));
    if (aId[i] == conflict) CHECK_OK(report(pEng, conflict, aAt[i], 409, NULL, 2000, NULL, 0));
    if (aId[i] == auth) CHECK_OK(report(pEng, auth, aAt[i], 401, NULL, 2000, NULL, 0));
    if (aId[i] == waiting) CHECK_OK(report(pEng, waiting, aAt[i], 503, NULL, 2000, NULL, 0));
  }
  /* Low priority: never claimed by the deliveries below, though older than them. */
  pending = enqueue_with(pEng, "pending", "\"priority\":\"low\"", 2000);
  for (i = 0; i < 5; i++) {
    id = deliver(pEng, "x", 2001);
    CHECK(!item_exists(pEng, id));
  }
  CHECK_EQ_I64(count_state(pEng, "done", 2002), 0);
  item_str(pEng, dead, "state", zState, sizeof(zState));
  CHECK_STR(zState, "dead");
  item_str(pEng, conflict, "state", zState, sizeof(zState));
  CHECK_STR(zState, "conflict");
  item_str(pEng, auth, "state", zState, sizeof(zState));
  CHECK_STR(zState, "auth");
  item_str(pEng, waiting, "state", zState, sizeof(zState));
  CHECK_STR(zState, "waiting");
  item_str(pEng, inflight, "state", zState, sizeof(zState));
  CHECK_STR(zState, "inflight");
  item_str(pEng, pending, "state", zState, sizeof(zState));
  CHECK_STR(zState, "pending");
  bgs_close(pEng);
}

TEST(test_history_ids_and_keys_are_not_reused_after_the_newest_done_item_is_pruned) {
  bgs_engine *pEng = engine_with("\"keepDone\":0");
  host_store s;
  char zKey1[64], zKey2[64];
  char *zOut;
  int64_t a, b;
  store_init(&s);
  zOut = enqueue_raw(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/a\"}",
                     NULL, 1000);
  a = json_int(zOut, "$.id");
  json_str(zOut, "$.key", zKey1, sizeof(zKey1));
  bgs_free(zOut);
  {
    int64_t aId[1], aAt[1];
    CHECK_EQ_I64(claim_ids(pEng, 1, 1000, aId, aAt), 1);
    CHECK_OK(report(pEng, a, aAt[0], 204, NULL, 1000, NULL, 0));
  }
  CHECK_EQ_I64(items_count(pEng, NULL), 0); /* the newest (and only) item is gone */
  zOut = enqueue_raw(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/b\"}",
                     NULL, 1001);
  b = json_int(zOut, "$.id");
  json_str(zOut, "$.key", zKey2, sizeof(zKey2));
  bgs_free(zOut);
  CHECK(b > a);
  CHECK(strcmp(zKey1, zKey2) != 0);
  /* Also across a restart from the stored pages, b pruned as well. */
  {
    int64_t aId[1], aAt[1];
    CHECK_EQ_I64(claim_ids(pEng, 1, 1002, aId, aAt), 1);
    CHECK_OK(report(pEng, b, aAt[0], 200, NULL, 1002, NULL, 0));
  }
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(enqueue_simple(pEng, "c", 1003) > b);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_history_prune_keeps_ids_unique_in_a_store_without_last_item_id) {
  /* No meta.last_item_id (enqueues write none; a store from before it existed has none
     either): the prune records the newest id before it deletes it. */
  bgs_engine *pEng = engine_with("\"keepDone\":0");
  int64_t a = enqueue_simple(pEng, "a", 1000), b;
  int64_t aId[1], aAt[1];
  CHECK(sqlite3_exec(pEng->db, "DELETE FROM meta WHERE key = 'last_item_id'", NULL, NULL, NULL) ==
        SQLITE_OK);
  CHECK_EQ_I64(claim_ids(pEng, 1, 1000, aId, aAt), 1);
  CHECK_OK(report(pEng, a, aAt[0], 200, NULL, 1000, NULL, 0));
  CHECK_EQ_I64(items_count(pEng, NULL), 0);
  b = enqueue_simple(pEng, "b", 1001);
  CHECK(b > a);
  bgs_close(pEng);
}

TEST(test_history_invalid_keep_done_is_rejected_and_changes_nothing) {
  static const char *const azBad[] = {
      "{\"name\":\"q\",\"keepDone\":-1}",         "{\"name\":\"q\",\"keepDone\":1.5}",
      "{\"name\":\"q\",\"keepDone\":1e3}",        "{\"name\":\"q\",\"keepDone\":\"10\"}",
      "{\"name\":\"q\",\"keepDone\":true}",       "{\"name\":\"q\",\"keepDone\":null}",
      "{\"name\":\"q\",\"keepDone\":{}}",         "{\"name\":\"q\",\"keepDone\":1000000001}",
      "{\"name\":\"q\",\"keepDone\":1e30}",
      /* Other options in the same call are not applied either. */
      "{\"name\":\"q\",\"maxAttempts\":1,\"coalesce\":true,\"keepDone\":-5}",
  };
  bgs_engine *pEng = engine_with("\"keepDone\":2");
  char zState[32];
  int64_t aId[1], aAt[1], id;
  size_t i;
  for (i = 0; i < sizeof(azBad) / sizeof(azBad[0]); i++) {
    int rc = bgs_queue_configure(pEng, azBad[i], 1000);
    if (rc != BGS_INVALID_ARGUMENT) fprintf(stderr, "accepted: %s\n", azBad[i]);
    CHECK_RC(rc, BGS_INVALID_ARGUMENT);
    CHECK(strstr(bgs_errmsg(pEng), "keepDone must be an integer from 0 to 1000000000") != NULL);
  }
  /* A new queue named in a rejected call does not come into being. */
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"new\",\"keepDone\":-1}", 1000),
           BGS_INVALID_ARGUMENT);
  {
    static const char zItem[] =
        "{\"queue\":\"new\",\"method\":\"POST\",\"url\":\"https://api.test/x\"}";
    char *zOut = NULL;
    CHECK_RC(bgs_enqueue(pEng, zItem, NULL, 0, 1000, &zOut), BGS_UNKNOWN_QUEUE);
  }
  /* maxAttempts is still unbounded: a retryable failure waits instead of dying. */
  id = enqueue_simple(pEng, "retry", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 1, 1000, aId, aAt), 1);
  CHECK_OK(report(pEng, id, aAt[0], 503, NULL, 1000, zState, sizeof(zState)));
  CHECK_STR(zState, "waiting");
  /* keepDone is still 2. */
  deliver(pEng, "a", 2000);
  deliver(pEng, "b", 2001);
  deliver(pEng, "c", 2002);
  CHECK_EQ_I64(done_in(pEng, "q"), 2);
  /* The bounds themselves are valid. */
  configure(pEng, "{\"name\":\"q\",\"keepDone\":1000000000}");
  configure(pEng, "{\"name\":\"q\",\"keepDone\":0}");
  deliver(pEng, "d", 2003);
  CHECK_EQ_I64(done_in(pEng, "q"), 0);
  bgs_close(pEng);
}

TEST(test_history_batch_results_prune_like_single_outcomes) {
  bgs_engine *pEng = engine_with(
      "\"keepDone\":1,\"batch\":{\"url\":\"https://api.test/batch\",\"maxItems\":10}");
  char *zDesc = NULL, *zOut = NULL;
  unsigned char *pBody = NULL;
  size_t nBody = 0;
  char zJson[1024], zResp[1024], zKey[3][64];
  int64_t aId[3];
  int i;
  for (i = 0; i < 3; i++) aId[i] = enqueue_simple(pEng, "b", 1000);
  CHECK_OK(bgs_claim_batch(pEng, "q", 2000, &zDesc, &pBody, &nBody));
  CHECK_EQ_I64(json_len(zDesc, "$.items"), 3);
  for (i = 0; i < 3; i++) {
    char zPath[32];
    snprintf(zPath, sizeof(zPath), "$.items[%d].key", i);
    json_str(zDesc, zPath, zKey[i], sizeof(zKey[i]));
  }
  snprintf(zJson, sizeof(zJson),
           "{\"items\":[{\"id\":%lld,\"attempt\":1},{\"id\":%lld,\"attempt\":1},"
           "{\"id\":%lld,\"attempt\":1}],\"status\":200}",
           (long long)aId[0], (long long)aId[1], (long long)aId[2]);
  snprintf(zResp, sizeof(zResp),
           "{\"results\":[{\"key\":\"%s\",\"status\":201},{\"key\":\"%s\",\"status\":201},"
           "{\"key\":\"%s\",\"status\":201}]}",
           zKey[0], zKey[1], zKey[2]);
  CHECK_OK(bgs_batch_outcome(pEng, zJson, zResp, strlen(zResp), 2100, &zOut));
  for (i = 0; i < 3; i++) {
    char zPath[32], zState[32];
    snprintf(zPath, sizeof(zPath), "$.results[%d].state", i);
    json_str(zOut, zPath, zState, sizeof(zState));
    CHECK_STR(zState, "done");
  }
  CHECK_EQ_I64(done_in(pEng, "q"), 1);
  CHECK(item_exists(pEng, aId[2]));
  bgs_free(zOut);
  bgs_free(zDesc);
  bgs_free(pBody);
  bgs_close(pEng);
}

/* A 412 with the remote document; returns the decision JSON. */
static char *report_412(bgs_engine *pEng, int64_t id, int64_t nAttempt, bgs_time now) {
  static const char zRemote[] = "{\"title\":\"theirs\"}";
  char zJson[256];
  char *zOut = NULL;
  snprintf(zJson, sizeof(zJson),
           "{\"id\":%lld,\"attempt\":%lld,\"status\":412,\"headers\":{\"etag\":\"v2\"}}",
           (long long)id, (long long)nAttempt);
  CHECK_OK(bgs_outcome(pEng, zJson, zRemote, strlen(zRemote), now, &zOut));
  return zOut;
}

TEST(test_history_conflicts_and_attempts_stay_listed_after_pruning) {
  /* keepDone 0: every delivery prunes everything it may. */
  bgs_engine *pEng = engine_with("\"keepDone\":0,\"conflict\":{\"strategy\":\"server-wins\"}");
  int64_t aId[1], aAt[1], dropped, manual, plain;
  char zState[32];
  char *zOut, *zList = NULL;
  /* server-wins: the item becomes done through conflict.c and must stay with its record. */
  dropped = enqueue_with(pEng, "notes/1", "\"entity\":\"note:1\",\"baseVersion\":\"v1\"", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 1, 1000, aId, aAt), 1);
  zOut = report_412(pEng, dropped, aAt[0], 1000);
  json_str(zOut, "$.state", zState, sizeof(zState));
  CHECK_STR(zState, "done");
  json_str(zOut, "$.conflict.resolution", zState, sizeof(zState));
  CHECK_STR(zState, "server-wins");
  bgs_free(zOut);
  /* manual, then resolved keep-remote: done through bgs_conflict_resolve. */
  manual = enqueue_with(pEng, "notes/2",
                        "\"entity\":\"note:2\",\"baseVersion\":\"v1\","
                        "\"conflictStrategy\":\"manual\"",
                        1001);
  CHECK_EQ_I64(claim_ids(pEng, 1, 1001, aId, aAt), 1);
  bgs_free(report_412(pEng, manual, aAt[0], 1001));
  CHECK_OK(bgs_conflicts(pEng, "{\"state\":\"open\"}", &zList));
  CHECK_EQ_I64(json_len(zList, "$"), 1);
  CHECK_OK(bgs_conflict_resolve(pEng, json_int(zList, "$[0].id"), "{\"keep\":\"remote\"}", 1002,
                                &zOut));
  json_str(zOut, "$.itemState", zState, sizeof(zState));
  CHECK_STR(zState, "done");
  bgs_free(zOut);
  bgs_free(zList);
  /* Later deliveries prune the queue; a plain done item goes, the two above stay. */
  plain = deliver(pEng, "plain", 1003);
  deliver(pEng, "later", 1004);
  CHECK(!item_exists(pEng, plain));
  CHECK(item_exists(pEng, dropped) && item_exists(pEng, manual));
  CHECK_STR(body_text(pEng, dropped), "notes/1"); /* the dropped change keeps its body */
  CHECK_OK(bgs_conflicts(pEng, "{\"queue\":\"q\"}", &zList));
  CHECK_EQ_I64(json_len(zList, "$"), 2);
  CHECK_EQ_I64(json_int(zList, "$[0].itemId"), dropped);
  CHECK_EQ_I64(json_int(zList, "$[1].itemId"), manual);
  json_str(zList, "$[0].url", zState, sizeof(zState));
  CHECK_STR(zState, "https://api.test/notes/1");
  json_str(zList, "$[1].itemState", zState, sizeof(zState));
  CHECK_STR(zState, "done");
  /* A resolved conflict is still not open (not "not found"). */
  CHECK_RC(bgs_conflict_resolve(pEng, json_int(zList, "$[0].id"), "{\"keep\":\"remote\"}", 1005,
                                &zOut),
           BGS_INVALID_STATE);
  bgs_free(zList);
  /* The attempt log still has the pruned item's entry. */
  CHECK_OK(bgs_attempts(pEng, NULL, &zList));
  CHECK_EQ_I64(json_len(zList, "$"), 4);
  CHECK_EQ_I64(json_int(zList, "$[2].id"), plain);
  bgs_free(zList);
  /* A late outcome for a pruned item changes nothing and says so. */
  CHECK_RC(report(pEng, plain, 1, 200, NULL, 1006, NULL, 0), BGS_NOT_FOUND);
  bgs_close(pEng);
}

TEST(test_history_prune_is_an_index_range_on_items_done) {
  bgs_engine *pEng = engine_new();
  CHECK(plan_is(pEng, BGS__DONE_THRESHOLD_SQL, "items_done (queue=?)"));
  CHECK(plan_is(pEng, BGS__DONE_PRUNE_SQL, "items_done (queue=? AND rowid<?)"));
  bgs_close(pEng);
}

/* The store's size after n deliveries with keepDone (zKeep), flushed as the host
   flushes: after every call. The attempt log is kept short (100 entries) so that the
   delivered items are what the size shows. */
static int64_t size_after(int n, const char *zKeep) {
  bgs_config cfg = {0};
  bgs_engine *pEng;
  host_store s;
  char zBody[1024];
  int64_t nSize;
  int i;
  cfg.uSeed = 42;
  cfg.zInstallId = "test";
  cfg.nMaxAttemptLog = 100;
  pEng = engine_with_config(&cfg, zKeep);
  memset(zBody, 'x', sizeof(zBody) - 1);
  zBody[sizeof(zBody) - 1] = 0;
  store_init(&s);
  for (i = 0; i < n; i++) {
    char *zOut;
    int64_t aId[1], aAt[1], id;
    zOut = enqueue_raw(pEng,
                       "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://api.test/notes/1\","
                       "\"headers\":{\"content-type\":\"application/json\",\"x-app\":\"notes\"},"
                       "\"entity\":\"note:1\",\"baseVersion\":\"v1\"}",
                       zBody, 1000 + i);
    id = json_int(zOut, "$.id");
    bgs_free(zOut);
    store_flush(pEng, &s);
    CHECK_EQ_I64(claim_ids(pEng, 1, 1000 + i, aId, aAt), 1);
    CHECK_OK(report(pEng, id, aAt[0], 200, NULL, 1000 + i, NULL, 0));
    store_flush(pEng, &s);
  }
  nSize = s.nSize;
  if (getenv("BGS_SHOW_SIZES")) {
    fprintf(stderr, "%d deliveries, %s: %lld bytes\n", n, zKeep, (long long)nSize);
  }
  bgs_close(pEng);
  store_free(&s);
  return nSize;
}

TEST(test_history_store_stops_growing_with_deliveries) {
  /* What 300 delivered items take when all are kept: the bound for any number of
     deliveries with keepDone 100. */
  int64_t nBound = size_after(300, "\"keepDone\":1000000000");
  int64_t n1000 = size_after(1000, "\"keepDone\":100");
  int64_t n5000 = size_after(5000, "\"keepDone\":100");
  CHECK(n5000 < nBound);
  /* Pages freed by the prune are reused: past keepDone the file no longer grows (a
     page of slack for where B-tree splits happen to fall). */
  CHECK(n5000 <= n1000 + BGS_CHUNK_SIZE);
}

/* The prune as defined: after done item x, the done ids at or below the (keepDone+1)-th
   newest go, except those a conflict record keeps (aKeep). aDone holds *pn done ids. */
static void model_deliver(int64_t *aDone, int *pn, int64_t x, int nKeepDone, const int64_t *aKeep,
                          int nKeep) {
  int i, j, n = *pn;
  int64_t idBelow;
  aDone[n++] = x;
  for (i = 1; i < n; i++) { /* newest first */
    for (j = i; j > 0 && aDone[j] > aDone[j - 1]; j--) {
      int64_t t = aDone[j];
      aDone[j] = aDone[j - 1];
      aDone[j - 1] = t;
    }
  }
  if (n > nKeepDone) {
    int nOut = 0;
    idBelow = aDone[nKeepDone];
    for (i = 0; i < n; i++) {
      int bKept = aDone[i] > idBelow;
      for (j = 0; j < nKeep; j++) bKept |= aDone[i] == aKeep[j];
      if (bKept) aDone[nOut++] = aDone[i];
    }
    n = nOut;
  }
  *pn = n;
}

/* Shuffles the n claimed (id, attempt) pairs in place, from the caller's seed. */
static void shuffle_claims(int64_t *aId, int64_t *aAt, int n, unsigned *puRand) {
  int k;
  for (k = n - 1; k > 0; k--) {
    int j;
    int64_t t;
    *puRand = *puRand * 1103515245u + 12345u;
    j = (int)((*puRand >> 16) % (unsigned)(k + 1));
    t = aId[k], aId[k] = aId[j], aId[j] = t;
    t = aAt[k], aAt[k] = aAt[j], aAt[j] = t;
  }
}

/* The engine remembers where the newest keepDone begin (bgs__done_prune's fast path);
   deliveries out of order (a late 2xx for an older attempt, a long request finishing after
   newer ones), items kept by a conflict record, a refused stale report (rolled back), a
   changed keepDone and a reopened engine must all leave exactly what the definition
   leaves. */
TEST(test_history_out_of_order_deliveries_prune_as_the_definition_says) {
  bgs_engine *pEng = engine_with("\"keepDone\":3,\"conflict\":{\"strategy\":\"server-wins\"}");
  int64_t aDone[256], aKeep[16], aId[8], aAt[8];
  int nDone = 0, nKeep = 0, nKeepDone = 3, i, k;
  bgs_time now = 1000;
  host_store s;
  unsigned uRand = 7;
  store_init(&s);
  for (i = 0; i < 40; i++) {
    int n;
    for (k = 0; k < 5; k++) enqueue_simple(pEng, "x", now);
    n = claim_ids(pEng, 5, now, aId, aAt);
    CHECK_EQ_I64(n, 5);
    /* Deliver the five in a shuffled order; every seventh round one waits for the next
       round (it finishes after newer ones: below the floor). */
    shuffle_claims(aId, aAt, n, &uRand);
    for (k = 0; k < n; k++) {
      char zState[32];
      now++;
      if (k == 2 && i % 5 == 1 && nKeep < 16) {
        /* A 412: server-wins drops the change, the item is done and its record keeps it. */
        bgs_free(report_412(pEng, aId[k], aAt[k], now));
        aKeep[nKeep++] = aId[k];
        model_deliver(aDone, &nDone, aId[k], nKeepDone, aKeep, nKeep);
        continue;
      }
      if (k == 3 && i % 4 == 2) {
        /* A stale report is refused (its transaction rolls back), then the real one. */
        CHECK_RC(report(pEng, aId[k], aAt[k] + 1, 200, NULL, now, NULL, 0), BGS_STALE);
      }
      CHECK_OK(report(pEng, aId[k], aAt[k], 200, NULL, now, zState, sizeof(zState)));
      model_deliver(aDone, &nDone, aId[k], nKeepDone, aKeep, nKeep);
    }
    if (i == 20) {
      nKeepDone = 5; /* applies at the next delivery, as the long way does */
      configure(pEng, "{\"name\":\"q\",\"keepDone\":5}");
    }
    if (i == 30) {
      store_flush(pEng, &s);
      bgs_close(pEng);
      pEng = engine_reopen(&s);
    }
    if (i == 30 || i == 20 || i % 3 == 0) store_flush(pEng, &s);
    CHECK_EQ_I64(done_in(pEng, "q"), nDone);
    for (k = 0; k < nDone; k++) CHECK(item_exists(pEng, aDone[k]));
  }
  bgs_close(pEng);
  store_free(&s);
}

/* The done items of the store, by SQL (bgs_items lists at most 1000). */
static int64_t done_count_sql(bgs_engine *pEng, int64_t id) {
  sqlite3_stmt *pStmt;
  int64_t n;
  CHECK(sqlite3_prepare_v2(pEng->db,
                           "SELECT count(*) FROM items WHERE state = 3 AND (?1 = 0 OR id = ?1)",
                           -1, &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_int64(pStmt, 1, id);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  n = sqlite3_column_int64(pStmt, 0);
  sqlite3_finalize(pStmt);
  return n;
}

/* Up to BGS__DONE_WINDOW_MAX kept ids the engine remembers them all (the window); above,
   only the floor, and each delivery asks the index for the next one. Both, and a switch
   from one to the other, leave what the definition leaves. */
TEST(test_history_prune_with_and_without_the_window_of_kept_ids) {
  enum { N_KEEP = BGS__DONE_WINDOW_MAX + 6 };
  bgs_engine *pEng = engine_with("\"keepDone\":1030");
  static int64_t aDone[2 * N_KEEP];
  int64_t aId[8], aAt[8];
  int nDone = 0, nKeepDone = N_KEEP, i, k, nRounds = N_KEEP / 5 + 30;
  bgs_time now = 1000;
  unsigned uRand = 11;
  CHECK_EQ_I64(N_KEEP, 1030);
  for (i = 0; i < nRounds; i++) {
    for (k = 0; k < 5; k++) enqueue_simple(pEng, "x", now);
    CHECK_EQ_I64(claim_ids(pEng, 5, now, aId, aAt), 5);
    shuffle_claims(aId, aAt, 5, &uRand); /* delivered in a shuffled order */
    for (k = 0; k < 5; k++) {
      now++;
      CHECK_OK(report(pEng, aId[k], aAt[k], 200, NULL, now, NULL, 0));
      model_deliver(aDone, &nDone, aId[k], nKeepDone, NULL, 0);
    }
    if (i == nRounds - 10) {
      nKeepDone = 4; /* from the floor alone to the window */
      configure(pEng, "{\"name\":\"q\",\"keepDone\":4}");
    }
    CHECK_EQ_I64(done_count_sql(pEng, 0), nDone);
    if (i >= nRounds - 15) {
      for (k = 0; k < nDone; k++) CHECK_EQ_I64(done_count_sql(pEng, aDone[k]), 1);
    }
  }
  bgs_close(pEng);
}

TEST(test_history_fast_prune_steps_are_index_seeks) {
  bgs_engine *pEng = engine_new();
  CHECK(plan_is(pEng, BGS__DONE_ABOVE_SQL, "items_done (queue=? AND rowid>?)"));
  CHECK(plan_is(pEng, BGS__DONE_BELOW_SQL, "items_done (queue=? AND rowid<?)"));
  CHECK(plan_is(pEng, BGS__DONE_KEPT_SQL, "items_done (queue=? AND rowid>?)"));
  bgs_close(pEng);
}
