/* test_conflict.c -- 409/412 through the engine API: each strategy, the inbox, the
   resolve and remote calls, entity blocking, bad documents, migration. */
#include "check.h"
#include "internal.h"
#include "support.h"

#define BASE "{\"title\":\"a\",\"body\":\"b\",\"tags\":[1]}"

/* Queue "q" with a conflict configuration (JSON object text). */
static bgs_engine *conflict_engine(const char *zConflict) {
  bgs_engine *pEng = engine_new();
  char zJson[1024];
  snprintf(zJson, sizeof(zJson), "{\"name\":\"q\",\"conflict\":%s}", zConflict);
  CHECK_OK(bgs_queue_configure(pEng, zJson, 1000));
  return pEng;
}

/* Enqueues a PUT of zBody to https://api.test/notes/<zPath>, entity "note:<zPath>". */
static int64_t put(bgs_engine *pEng, const char *zPath, const char *zMethod, const char *zBody,
                   const char *zExtra, bgs_time now) {
  char zJson[2048];
  char *zOut = NULL;
  int64_t id;
  int rc;
  snprintf(zJson, sizeof(zJson),
           "{\"queue\":\"q\",\"method\":\"%s\",\"url\":\"https://api.test/notes/%s\","
           "\"entity\":\"note:%s\",\"baseVersion\":\"\\\"v1\\\"\",\"baseDocument\":" BASE "%s%s}",
           zMethod, zPath, zPath, zExtra ? "," : "", zExtra ? zExtra : "");
  rc = bgs_enqueue(pEng, zJson, zBody, strlen(zBody), now, &zOut);
  if (rc != BGS_OK) fprintf(stderr, "enqueue: %s\n", bgs_errmsg(pEng));
  CHECK_OK(rc);
  id = json_int(zOut, "$.id");
  bgs_free(zOut);
  return id;
}

/* Claims one item of "q"; returns its claim JSON (caller frees) or NULL when none. */
static char *claim_one(bgs_engine *pEng, bgs_time now) {
  char *zOut = NULL;
  char *zItem = NULL;
  char zId[32];
  CHECK_OK(bgs_claim(pEng, "q", 1, now, &zOut));
  json_str(zOut, "$[0].id", zId, sizeof(zId));
  if (zId[0]) zItem = strdup(zOut);
  bgs_free(zOut);
  return zItem;
}

/* Reports status with an etag (NULL = none) and a body (NULL = none); returns the
   decision JSON (caller frees with bgs_free). */
static char *outcome(bgs_engine *pEng, const char *zItem, int iStatus, const char *zEtag,
                     const char *zBody, bgs_time now) {
  char zJson[512], zEsc[128];
  char *zOut = NULL;
  int rc;
  size_t i, n = 0;
  for (i = 0; zEtag && zEtag[i] && n < sizeof(zEsc) - 2; i++) {
    if (zEtag[i] == '"') zEsc[n++] = '\\';
    zEsc[n++] = zEtag[i];
  }
  zEsc[n] = 0;
  snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":%lld,\"status\":%d%s%s%s}",
           (long long)json_int(zItem, "$[0].id"), (long long)json_int(zItem, "$[0].attempt"),
           iStatus, zEtag ? ",\"headers\":{\"ETag\":\"" : "", zEtag ? zEsc : "", zEtag ? "\"}" : "");
  rc = bgs_outcome(pEng, zJson, zBody, zBody ? strlen(zBody) : 0, now, &zOut);
  if (rc != BGS_OK) fprintf(stderr, "outcome: %s\n", bgs_errmsg(pEng));
  CHECK_OK(rc);
  return zOut;
}

static char *conflicts(bgs_engine *pEng, const char *zFilter) {
  char *zOut = NULL;
  CHECK_OK(bgs_conflicts(pEng, zFilter, &zOut));
  return zOut;
}

static void check_str_at(const char *zJson, const char *zPath, const char *zWant) {
  char z[4096];
  json_str(zJson, zPath, z, sizeof(z));
  if (strcmp(z, zWant) != 0) {
    fprintf(stderr, "%s in %s is \"%s\", want \"%s\"\n", zPath, zJson, z, zWant);
    CHECK(0);
  }
}

static char *body_of(bgs_engine *pEng, int64_t id) {
  unsigned char *p;
  size_t n;
  char *z;
  CHECK_OK(bgs_body(pEng, id, &p, &n));
  z = malloc(n + 1);
  memcpy(z, p, n);
  z[n] = 0;
  bgs_free(p);
  return z;
}

#define LOCAL "{\"title\":\"mine\",\"body\":\"b\",\"tags\":[1]}"
#define REMOTE "{\"title\":\"a\",\"body\":\"theirs\",\"tags\":[1]}"

TEST(test_conflict_claim_returns_the_base_version_for_if_match) {
  bgs_engine *pEng = engine_new();
  char *zItem;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  check_str_at(zItem, "$[0].baseVersion", "\"v1\"");
  free(zItem);
  enqueue_simple(pEng, "plain", 2000);
  zItem = claim_one(pEng, 3000);
  CHECK_EQ_I64(json_int(zItem, "$[0].baseVersion"), -1); /* null */
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_default_is_manual_and_parks_in_the_inbox) {
  bgs_engine *pEng = engine_new();
  char *zItem, *zOut, *zList;
  int64_t id = put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  check_str_at(zOut, "$.state", "conflict");
  check_str_at(zOut, "$.conflict.strategy", "manual");
  check_str_at(zOut, "$.conflict.state", "open");
  CHECK_EQ_I64(json_int(zOut, "$.conflict.needsRemote"), 0);
  zList = conflicts(pEng, "{\"state\":\"open\"}");
  CHECK_EQ_I64(json_int(zList, "$[0].itemId"), id);
  check_str_at(zList, "$[0].remoteVersion", "\"v2\"");
  check_str_at(zList, "$[0].baseVersion", "\"v1\"");
  check_str_at(zList, "$[0].remote.body", "theirs");
  check_str_at(zList, "$[0].local.title", "mine");
  check_str_at(zList, "$[0].base.title", "a");
  CHECK_EQ_I64(json_int(zList, "$[0].status"), 412);
  CHECK_EQ_I64(count_state(pEng, "conflict", 2100), 1);
  bgs_free(zOut);
  bgs_free(zList);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_server_wins_drops_the_local_change_visibly) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"server-wins\"}");
  char *zItem, *zOut, *zList, *zBody;
  int64_t id = put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  int64_t idNext = put(pEng, "1", "PUT", "{\"title\":\"later\"}", NULL, 1001);
  zItem = claim_one(pEng, 2000);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), id);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  check_str_at(zOut, "$.state", "done");
  check_str_at(zOut, "$.reason", "server-wins");
  check_str_at(zOut, "$.conflict.state", "resolved");
  /* Not silently lost: the record keeps the local document, the item its body. */
  zList = conflicts(pEng, NULL);
  check_str_at(zList, "$[0].resolution", "server-wins");
  check_str_at(zList, "$[0].local.title", "mine");
  check_str_at(zList, "$[0].itemState", "done");
  zBody = body_of(pEng, id);
  CHECK_STR(zBody, LOCAL);
  free(zBody);
  free(zItem);
  /* The entity moves on. */
  zItem = claim_one(pEng, 2200);
  CHECK(zItem != NULL);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), idNext);
  bgs_free(zOut);
  bgs_free(zList);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_client_wins_resends_against_the_new_version_with_a_new_key) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"client-wins\"}");
  char *zItem, *zOut, *zAgain, *zBody, *zList;
  char zKey1[64], zKey2[64];
  int64_t id = put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  json_str(zItem, "$[0].key", zKey1, sizeof(zKey1));
  zOut = outcome(pEng, zItem, 412, "\"v2\"", NULL, 2100); /* the ETag is enough */
  check_str_at(zOut, "$.state", "pending");
  check_str_at(zOut, "$.reason", "client-wins");
  zAgain = claim_one(pEng, 2100);
  CHECK(zAgain != NULL);
  CHECK_EQ_I64(json_int(zAgain, "$[0].id"), id);
  check_str_at(zAgain, "$[0].baseVersion", "\"v2\"");
  json_str(zAgain, "$[0].key", zKey2, sizeof(zKey2));
  CHECK(strcmp(zKey1, zKey2) != 0);
  CHECK_STR(zKey2, "test.1.r1");
  zBody = body_of(pEng, id);
  CHECK_STR(zBody, LOCAL);
  bgs_free(zOut);
  zOut = outcome(pEng, zAgain, 200, "\"v3\"", NULL, 2200);
  check_str_at(zOut, "$.state", "done");
  zList = conflicts(pEng, NULL);
  check_str_at(zList, "$[0].resolution", "client-wins");
  bgs_free(zOut);
  bgs_free(zList);
  free(zBody);
  free(zItem);
  free(zAgain);
  bgs_close(pEng);
}

TEST(test_conflict_client_wins_without_etag_asks_for_the_remote) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"client-wins\"}");
  char *zItem, *zOut, *zRemote;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 409, NULL, NULL, 2100);
  check_str_at(zOut, "$.state", "conflict");
  CHECK_EQ_I64(json_int(zOut, "$.conflict.needsRemote"), 1);
  free(zItem);
  CHECK(claim_one(pEng, 2200) == NULL);
  CHECK_OK(bgs_conflict_remote(pEng, json_int(zOut, "$.conflict.id"), REMOTE, "\"v5\"", 2300,
                               &zRemote));
  check_str_at(zRemote, "$.resolution", "client-wins");
  check_str_at(zRemote, "$.itemState", "pending");
  zItem = claim_one(pEng, 2300);
  check_str_at(zItem, "$[0].baseVersion", "\"v5\"");
  bgs_free(zOut);
  bgs_free(zRemote);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_merge_resends_the_merged_document) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"merge\"}");
  char *zItem, *zOut, *zBody;
  int64_t id = put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  check_str_at(zOut, "$.state", "pending");
  check_str_at(zOut, "$.reason", "merged");
  free(zItem);
  zItem = claim_one(pEng, 2100);
  check_str_at(zItem, "$[0].baseVersion", "\"v2\"");
  check_str_at(zItem, "$[0].method", "PUT");
  zBody = body_of(pEng, id);
  check_str_at(zBody, "$.title", "mine");
  check_str_at(zBody, "$.body", "theirs");
  CHECK_EQ_I64(json_int(zItem, "$[0].bodySize"), (int64_t)strlen(zBody));
  bgs_free(zOut);
  free(zBody);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_merge_of_a_patch_sends_a_put_of_the_whole_document) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"merge\"}");
  char *zItem, *zOut, *zBody;
  int64_t id = put(pEng, "1", "PATCH", "{\"title\":\"mine\"}", NULL, 1000);
  zItem = claim_one(pEng, 2000);
  check_str_at(zItem, "$[0].method", "PATCH");
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  check_str_at(zOut, "$.state", "pending");
  free(zItem);
  zItem = claim_one(pEng, 2100);
  check_str_at(zItem, "$[0].method", "PUT");
  zBody = body_of(pEng, id);
  check_str_at(zBody, "$.title", "mine");
  check_str_at(zBody, "$.body", "theirs");
  CHECK_EQ_I64(json_int(zBody, "$.tags[0]"), 1);
  bgs_free(zOut);
  free(zBody);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_merge_unresolvable_parks_and_blocks_the_entity_until_resolved) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"merge\"}");
  char *zItem, *zOut, *zList, *zRes, *zBody;
  int64_t id = put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  int64_t idNext = put(pEng, "1", "PUT", "{\"title\":\"later\"}", NULL, 1001);
  int64_t idOther = put(pEng, "2", "PUT", LOCAL, NULL, 1002);
  int64_t iConflict;
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", "{\"title\":\"theirs\",\"body\":\"b\",\"tags\":[1]}",
                 2100);
  check_str_at(zOut, "$.state", "conflict");
  check_str_at(zOut, "$.conflict.reason", "unresolvable");
  check_str_at(zOut, "$.conflict.fields[0]", "title");
  iConflict = json_int(zOut, "$.conflict.id");
  free(zItem);
  /* Only the other entity moves; idNext waits behind the conflict. */
  zItem = claim_one(pEng, 2200);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), idOther);
  free(zItem);
  CHECK(claim_one(pEng, 2300) == NULL);
  zList = conflicts(pEng, "{\"state\":\"open\",\"entity\":\"note:1\"}");
  CHECK_EQ_I64(json_int(zList, "$[0].id"), iConflict);
  check_str_at(zList, "$[0].merged.title", "theirs");
  bgs_free(zList);
  /* The app merges by hand. */
  CHECK_OK(bgs_conflict_resolve(pEng, iConflict, "{\"document\":{\"title\":\"both\",\"body\":\"b\"}}",
                                2400, &zRes));
  check_str_at(zRes, "$.state", "resolved");
  check_str_at(zRes, "$.resolution", "document");
  zItem = claim_one(pEng, 2400);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), id);
  check_str_at(zItem, "$[0].baseVersion", "\"v2\"");
  zBody = body_of(pEng, id);
  check_str_at(zBody, "$.title", "both");
  bgs_free(zOut);
  zOut = outcome(pEng, zItem, 204, NULL, NULL, 2500);
  free(zItem);
  zItem = claim_one(pEng, 2600);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), idNext);
  /* A resolved conflict cannot be resolved again. */
  bgs_free(zRes);
  CHECK_RC(bgs_conflict_resolve(pEng, iConflict, "{\"keep\":\"local\"}", 2700, &zRes),
           BGS_INVALID_STATE);
  CHECK(zRes == NULL);
  bgs_free(zOut);
  free(zBody);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_merge_field_rules_decide_both_sided_changes) {
  bgs_engine *pEng = conflict_engine(
      "{\"strategy\":\"merge\",\"fields\":{\"title\":\"prefer-local\",\"body\":\"newer-wins\"}}");
  char *zItem, *zOut, *zBody;
  int64_t id = put(pEng, "1", "PUT", "{\"title\":\"mine\",\"body\":\"mine\",\"tags\":[1]}",
                   "\"editedAt\":5000", 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"",
                 "{\"title\":\"theirs\",\"body\":\"theirs\",\"tags\":[2],\"updatedAt\":4000}", 2100);
  check_str_at(zOut, "$.state", "pending");
  zBody = body_of(pEng, id);
  check_str_at(zBody, "$.title", "mine");
  check_str_at(zBody, "$.body", "mine"); /* edited at 5000, remote at 4000 */
  CHECK_EQ_I64(json_int(zBody, "$.tags[0]"), 2);
  bgs_free(zOut);
  free(zBody);
  free(zItem);
  bgs_close(pEng);
}

/* A merge needs the local side as a JSON object; a body that is not one (an array, a
   string, not JSON at all) cannot be merged. The change must not be lost: the conflict is
   parked for the app ("local-not-a-document"), the body untouched, the entity blocked,
   and keep-local still sends that very body against the new version. */
TEST(test_conflict_merge_of_a_body_that_is_not_an_object_parks_it_unchanged) {
  static const char *const azBody[] = {"[1,2]", "\"mine\"", "title=mine", "{\"title\":"};
  static const char *const azMethod[] = {"PUT", "PUT", "PUT", "PATCH"};
  size_t i;
  for (i = 0; i < sizeof(azBody) / sizeof(azBody[0]); i++) {
    bgs_engine *pEng = conflict_engine("{\"strategy\":\"merge\"}");
    char *zItem, *zOut, *zList, *zRes, *zBody;
    int64_t iConflict;
    int64_t id = put(pEng, "1", azMethod[i], azBody[i], NULL, 1000);
    int64_t idNext = put(pEng, "1", "PUT", LOCAL, NULL, 1001);
    zItem = claim_one(pEng, 2000);
    zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
    check_str_at(zOut, "$.state", "conflict");
    check_str_at(zOut, "$.conflict.state", "open");
    check_str_at(zOut, "$.conflict.reason", "local-not-a-document");
    CHECK_EQ_I64(json_int(zOut, "$.conflict.needsRemote"), 0);
    iConflict = json_int(zOut, "$.conflict.id");
    free(zItem);
    /* Listed with what is known: base and remote, no local document, the version. */
    zList = conflicts(pEng, "{\"state\":\"open\"}");
    CHECK_EQ_I64(json_int(zList, "$[0].itemId"), id);
    check_str_at(zList, "$[0].local", ""); /* null */
    check_str_at(zList, "$[0].remote.body", "theirs");
    check_str_at(zList, "$[0].base.title", "a");
    check_str_at(zList, "$[0].remoteVersion", "\"v2\"");
    bgs_free(zList);
    zBody = body_of(pEng, id);
    CHECK(strcmp(zBody, azBody[i]) == 0);
    free(zBody);
    CHECK(claim_one(pEng, 2200) == NULL); /* idNext waits behind the conflict */
    /* The app keeps its change: the same bytes go out against "v2". */
    CHECK_OK(bgs_conflict_resolve(pEng, iConflict, "{\"keep\":\"local\"}", 2300, &zRes));
    check_str_at(zRes, "$.resolution", "keep-local");
    zItem = claim_one(pEng, 2300);
    CHECK_EQ_I64(json_int(zItem, "$[0].id"), id);
    check_str_at(zItem, "$[0].baseVersion", "\"v2\"");
    check_str_at(zItem, "$[0].method", azMethod[i]);
    zBody = body_of(pEng, id);
    CHECK(strcmp(zBody, azBody[i]) == 0);
    free(zBody);
    bgs_free(zOut);
    zOut = outcome(pEng, zItem, 204, NULL, NULL, 2400);
    free(zItem);
    zItem = claim_one(pEng, 2500);
    CHECK_EQ_I64(json_int(zItem, "$[0].id"), idNext);
    bgs_free(zOut);
    bgs_free(zRes);
    free(zItem);
    bgs_close(pEng);
  }
}

TEST(test_conflict_item_strategy_overrides_the_queue) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"manual\"}");
  char *zItem, *zOut;
  put(pEng, "1", "PUT", LOCAL, "\"conflictStrategy\":\"server-wins\"", 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 409, "\"v2\"", REMOTE, 2100);
  check_str_at(zOut, "$.state", "done");
  check_str_at(zOut, "$.conflict.strategy", "server-wins");
  bgs_free(zOut);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_manual_keep_remote_drops_and_unblocks) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"manual\"}");
  char *zItem, *zOut, *zRes;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  int64_t idNext = put(pEng, "1", "PUT", "{\"title\":\"later\"}", NULL, 1001);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  free(zItem);
  CHECK(claim_one(pEng, 2200) == NULL);
  CHECK_OK(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"), "{\"keep\":\"remote\"}",
                                2300, &zRes));
  check_str_at(zRes, "$.resolution", "keep-remote");
  check_str_at(zRes, "$.itemState", "done");
  zItem = claim_one(pEng, 2300);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), idNext);
  bgs_free(zOut);
  bgs_free(zRes);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_custom_parks_for_the_resolver_and_keep_local_resends) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"custom\"}");
  char *zItem, *zOut, *zRes;
  int64_t id = put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  check_str_at(zOut, "$.state", "conflict");
  CHECK_EQ_I64(json_int(zOut, "$.conflict.custom"), 1);
  free(zItem);
  CHECK_OK(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"), "{\"keep\":\"local\"}",
                                2300, &zRes));
  check_str_at(zRes, "$.resolution", "keep-local");
  zItem = claim_one(pEng, 2300);
  CHECK_EQ_I64(json_int(zItem, "$[0].id"), id);
  check_str_at(zItem, "$[0].baseVersion", "\"v2\"");
  bgs_free(zOut);
  bgs_free(zRes);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_unusable_response_body_needs_the_remote_and_bad_remotes_are_typed) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"merge\"}");
  char *zItem, *zOut, *zRes = NULL, *zList;
  int64_t iConflict;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", "<html>conflict</html>", 2100);
  check_str_at(zOut, "$.state", "conflict");
  CHECK_EQ_I64(json_int(zOut, "$.conflict.needsRemote"), 1);
  iConflict = json_int(zOut, "$.conflict.id");
  /* The glue's GET returned garbage: a typed error, nothing changes. */
  CHECK_RC(bgs_conflict_remote(pEng, iConflict, "[1,2,3]", "\"v2\"", 2200, &zRes),
           BGS_INVALID_DOCUMENT);
  CHECK_RC(bgs_conflict_remote(pEng, iConflict, "{\"a\":", "\"v2\"", 2200, &zRes),
           BGS_INVALID_DOCUMENT);
  CHECK_RC(bgs_conflict_remote(pEng, iConflict, REMOTE, NULL, 2200, &zRes), BGS_INVALID_ARGUMENT);
  CHECK(zRes == NULL);
  zList = conflicts(pEng, "{\"state\":\"open\"}");
  CHECK_EQ_I64(json_int(zList, "$[0].needsRemote"), 1);
  CHECK_EQ_I64(count_state(pEng, "conflict", 2200), 1);
  bgs_free(zList);
  CHECK_OK(bgs_conflict_remote(pEng, iConflict, REMOTE, "\"v2\"", 2300, &zRes));
  check_str_at(zRes, "$.resolution", "merged");
  CHECK_EQ_I64(count_state(pEng, "pending", 2300), 1);
  bgs_free(zOut);
  bgs_free(zRes);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_bad_documents_are_typed_and_change_nothing) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"manual\"}");
  char *zOut = NULL, *zItem, *zRes = NULL, *zList;
  char zDeep[1024];
  int i, n = 0;
  /* Enqueue: a base document that is not an object, or too deep. */
  CHECK_RC(bgs_enqueue(pEng,
                       "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://api.test/n\","
                       "\"baseDocument\":[1]}",
                       "{}", 2, 1000, &zOut),
           BGS_INVALID_DOCUMENT);
  n = sprintf(zDeep, "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://api.test/n\","
                     "\"baseDocument\":");
  for (i = 0; i < 70; i++) n += sprintf(zDeep + n, "{\"a\":");
  n += sprintf(zDeep + n, "1");
  for (i = 0; i < 71; i++) zDeep[n++] = '}';
  zDeep[n] = 0;
  CHECK_RC(bgs_enqueue(pEng, zDeep, "{}", 2, 1000, &zOut), BGS_INVALID_DOCUMENT);
  CHECK_RC(bgs_enqueue(pEng,
                       "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://api.test/n\","
                       "\"conflictStrategy\":\"coin-flip\"}",
                       "{}", 2, 1000, &zOut),
           BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_enqueue(pEng,
                       "{\"queue\":\"q\",\"method\":\"PUT\",\"url\":\"https://api.test/n\","
                       "\"baseVersion\":7}",
                       "{}", 2, 1000, &zOut),
           BGS_INVALID_ARGUMENT);
  CHECK(zOut == NULL);
  CHECK_EQ_I64(count_state(pEng, "pending", 1000), 0);
  /* Queue configuration. */
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"conflict\":{\"strategy\":\"nope\"}}", 1000),
           BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_queue_configure(pEng, "{\"name\":\"q\",\"conflict\":{\"fields\":{\"t\":\"x\"}}}", 1000),
           BGS_INVALID_ARGUMENT);
  /* Resolve with a bad document: typed, the conflict stays open. */
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  CHECK_RC(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"), "{\"document\":\"text\"}",
                                2200, &zRes),
           BGS_INVALID_DOCUMENT);
  CHECK_RC(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"), "{\"keep\":\"both\"}",
                                2200, &zRes),
           BGS_INVALID_ARGUMENT);
  CHECK_RC(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"), "not json", 2200, &zRes),
           BGS_INVALID_JSON);
  CHECK_RC(bgs_conflict_resolve(pEng, 999, "{\"keep\":\"local\"}", 2200, &zRes), BGS_NOT_FOUND);
  CHECK(zRes == NULL);
  zList = conflicts(pEng, "{\"state\":\"open\"}");
  CHECK_EQ_I64(json_int(zList, "$[0].id"), json_int(zOut, "$.conflict.id"));
  CHECK_EQ_I64(count_state(pEng, "conflict", 2200), 1);
  bgs_free(zList);
  bgs_free(zOut);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_remote_gone_parks_merge_and_keep_local_drops_if_match) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"merge\"}");
  char *zItem, *zOut, *zRes;
  int64_t iConflict;
  put(pEng, "1", "PUT", LOCAL, "\"headers\":{\"If-Match\":\"\\\"v1\\\"\"}", 1000);
  zItem = claim_one(pEng, 2000);
  check_str_at(zItem, "$[0].headers.if-match", "\"v1\"");
  zOut = outcome(pEng, zItem, 412, NULL, NULL, 2100);
  iConflict = json_int(zOut, "$.conflict.id");
  CHECK_OK(bgs_conflict_remote(pEng, iConflict, NULL, NULL, 2200, &zRes));
  check_str_at(zRes, "$.reason", "remote-deleted");
  CHECK_EQ_I64(json_int(zRes, "$.remoteDeleted"), 1);
  bgs_free(zRes);
  CHECK_OK(bgs_conflict_resolve(pEng, iConflict, "{\"keep\":\"local\"}", 2300, &zRes));
  free(zItem);
  zItem = claim_one(pEng, 2300);
  CHECK_EQ_I64(json_int(zItem, "$[0].baseVersion"), -1);
  CHECK_EQ_I64(json_int(zItem, "$[0].headers.if-match"), -1);
  bgs_free(zOut);
  bgs_free(zRes);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_keep_local_needs_a_known_version) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"manual\"}");
  char *zItem, *zOut, *zRes = NULL;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 409, NULL, NULL, 2100);
  CHECK_RC(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"), "{\"keep\":\"local\"}",
                                2200, &zRes),
           BGS_INVALID_STATE);
  CHECK_OK(bgs_conflict_resolve(pEng, json_int(zOut, "$.conflict.id"),
                                "{\"keep\":\"local\",\"version\":\"\\\"v9\\\"\"}", 2200, &zRes));
  free(zItem);
  zItem = claim_one(pEng, 2300);
  check_str_at(zItem, "$[0].baseVersion", "\"v9\"");
  bgs_free(zOut);
  bgs_free(zRes);
  free(zItem);
  bgs_close(pEng);
}

TEST(test_conflict_delivery_moves_later_items_of_the_entity_to_the_new_version) {
  bgs_engine *pEng = engine_new();
  char *zItem, *zOut;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  put(pEng, "1", "PUT", "{\"title\":\"second\"}", NULL, 1001);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 200, "\"v2\"", NULL, 2100);
  free(zItem);
  zItem = claim_one(pEng, 2200);
  check_str_at(zItem, "$[0].baseVersion", "\"v2\"");
  bgs_free(zOut);
  free(zItem);
  bgs_close(pEng);
}

/* The ETag's name in any case, even written with an escape, moves the later items; an
   outcome without one leaves them at the version they were edited from. */
TEST(test_conflict_delivery_reads_the_etag_name_in_any_form) {
  static const char *const azHeaders[] = {"\"etag\":\"\\\"v2\\\"\"",
                                          "\"\\u0045Tag\":\"\\\"v2\\\"\"", NULL};
  int i;
  for (i = 0; i < 3; i++) {
    bgs_engine *pEng = engine_new();
    char *zItem, *zOut = NULL, zJson[256];
    put(pEng, "1", "PUT", LOCAL, NULL, 1000);
    put(pEng, "1", "PUT", "{\"title\":\"second\"}", NULL, 1001);
    zItem = claim_one(pEng, 2000);
    snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":1,\"status\":200%s%s%s}",
             (long long)json_int(zItem, "$[0].id"), azHeaders[i] ? ",\"headers\":{" : "",
             azHeaders[i] ? azHeaders[i] : "", azHeaders[i] ? "}" : "");
    CHECK_OK(bgs_outcome(pEng, zJson, NULL, 0, 2100, &zOut));
    free(zItem);
    zItem = claim_one(pEng, 2200);
    check_str_at(zItem, "$[0].baseVersion", azHeaders[i] ? "\"v2\"" : "\"v1\"");
    bgs_free(zOut);
    free(zItem);
    bgs_close(pEng);
  }
}

TEST(test_conflict_client_wins_is_bounded) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"client-wins\"}");
  char *zItem, *zOut = NULL;
  int i;
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  for (i = 0; i < 17; i++) {
    char zTag[16];
    zItem = claim_one(pEng, 2000 + i);
    CHECK(zItem != NULL);
    snprintf(zTag, sizeof(zTag), "\"v%d\"", i + 2);
    bgs_free(zOut);
    zOut = outcome(pEng, zItem, 412, zTag, NULL, 2000 + i);
    free(zItem);
  }
  check_str_at(zOut, "$.state", "conflict");
  check_str_at(zOut, "$.conflict.reason", "too-many-conflicts");
  CHECK(claim_one(pEng, 5000) == NULL);
  bgs_free(zOut);
  bgs_close(pEng);
}

TEST(test_conflict_inbox_survives_a_reopen) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"manual\"}");
  host_store store;
  char *zItem, *zOut, *zList;
  store_init(&store);
  put(pEng, "1", "PUT", LOCAL, NULL, 1000);
  zItem = claim_one(pEng, 2000);
  zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2100);
  store_flush(pEng, &store);
  bgs_close(pEng);
  pEng = engine_reopen(&store);
  zList = conflicts(pEng, "{\"state\":\"open\"}");
  CHECK_EQ_I64(json_int(zList, "$[0].id"), json_int(zOut, "$.conflict.id"));
  check_str_at(zList, "$[0].remote.body", "theirs");
  bgs_free(zList);
  bgs_free(zOut);
  free(zItem);
  bgs_close(pEng);
  store_free(&store);
}

TEST(test_conflict_a_version_1_store_is_migrated) {
  bgs_engine *pEng = engine_new();
  host_store store;
  char *zList;
  store_init(&store);
  enqueue_simple(pEng, "old", 1000);
  /* Make it a version 1 store: no conflicts table. */
  CHECK(sqlite3_exec(pEng->db, "DROP TABLE conflicts; PRAGMA user_version = 1;", NULL, NULL,
                     NULL) == SQLITE_OK);
  store_flush(pEng, &store);
  bgs_close(pEng);
  pEng = engine_reopen(&store);
  zList = conflicts(pEng, NULL);
  CHECK_STR(zList, "[]");
  CHECK_EQ_I64(count_state(pEng, "pending", 1000), 1);
  bgs_free(zList);
  bgs_close(pEng);
  store_free(&store);
}

TEST(test_conflict_resolved_records_are_bounded_and_open_ones_kept) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"server-wins\"}");
  char *zItem, *zOut, *zList;
  int i;
  /* One open conflict first (item override: manual), then 1005 resolved ones. */
  put(pEng, "open", "PUT", LOCAL, "\"conflictStrategy\":\"manual\"", 1000);
  zItem = claim_one(pEng, 2000);
  bgs_free(outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 2000));
  free(zItem);
  for (i = 0; i < 1005; i++) {
    char zPath[16];
    snprintf(zPath, sizeof(zPath), "%d", i);
    put(pEng, zPath, "PUT", LOCAL, NULL, 3000);
    zItem = claim_one(pEng, 3000);
    zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 3000);
    bgs_free(zOut);
    free(zItem);
  }
  zList = conflicts(pEng, "{\"state\":\"resolved\",\"limit\":5000}");
  CHECK_EQ_I64(json_int(zList, "$[#-1].itemId") - json_int(zList, "$[0].itemId"), 999);
  {
    char zPath[32];
    snprintf(zPath, sizeof(zPath), "$[%d].id", 999);
    CHECK(json_int(zList, zPath) > 0);
    snprintf(zPath, sizeof(zPath), "$[%d].id", 1000);
    CHECK_EQ_I64(json_int(zList, zPath), -1);
  }
  bgs_free(zList);
  zList = conflicts(pEng, "{\"state\":\"open\"}");
  check_str_at(zList, "$[0].entity", "note:open");
  bgs_free(zList);
  bgs_close(pEng);
}

/* A late 2xx for the attempt that met a conflict: the request got through after all, so
   the open record is resolved "delivered" -- also after deliveries that found no open
   conflict, and after one that resolved the only one (engine.c remembers whether any is
   open). A rolled-back call leaves the record as it was. */
TEST(test_conflict_late_success_resolves_the_open_record_as_delivered) {
  bgs_engine *pEng = conflict_engine("{\"strategy\":\"manual\"}");
  int64_t aId[1], aAt[1], id;
  char *zItem, *zOut, *zList;
  int iRound;
  /* Deliveries with no conflict anywhere. */
  enqueue_simple(pEng, "plain", 1000);
  CHECK_EQ_I64(claim_ids(pEng, 1, 1000, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], aAt[0], 200, NULL, 1000, NULL, 0));
  for (iRound = 0; iRound < 2; iRound++) {
    char zPath[8];
    snprintf(zPath, sizeof(zPath), "%d", iRound + 1);
    put(pEng, zPath, "PUT", LOCAL, NULL, 1100);
    zItem = claim_one(pEng, 1200);
    id = json_int(zItem, "$[0].id");
    zOut = outcome(pEng, zItem, 412, "\"v2\"", REMOTE, 1300);
    check_str_at(zOut, "$.state", "conflict");
    bgs_free(zOut);
    if (iRound == 1) {
      /* A refused report (its transaction rolls back) changes nothing. */
      CHECK_RC(report(pEng, id, json_int(zItem, "$[0].attempt") + 1, 200, NULL, 1350, NULL, 0),
               BGS_STALE);
    }
    CHECK_OK(report(pEng, id, json_int(zItem, "$[0].attempt"), 200, NULL, 1400, NULL, 0));
    free(zItem);
    CHECK_OK(bgs_conflicts(pEng, "{}", &zList));
    CHECK_EQ_I64(json_int(zList, "$[#-1].itemId"), id);
    check_str_at(zList, "$[#-1].state", "resolved");
    check_str_at(zList, "$[#-1].resolution", "delivered");
    bgs_free(zList);
  }
  bgs_close(pEng);
}
