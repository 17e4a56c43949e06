/*
 * test_sqlite_build.c -- the SQLite build the engine ships (core/cmake/sqlite.cmake,
 * core/sqlite/amalgamation.c): statements compiled out fail cleanly, and the engine's
 * rewritten upserts keep their meaning.
 */
#include "bgsync.h"
#include "check.h"
#include "internal.h"
#include "support.h"

/* Runs zSql on the engine's connection; expects it to fail with rcWant and zWant in the
   message. */
static void check_fails(bgs_engine *pEng, const char *zSql, int rcWant, const char *zWant) {
  char *zErr = NULL;
  int rc = sqlite3_exec(pEng->db, zSql, NULL, NULL, &zErr);
  if (rc != rcWant || zErr == NULL || strstr(zErr, zWant) == NULL) {
    fprintf(stderr, "%s: rc %d, error %s; want an error with \"%s\"\n", zSql, rc,
            zErr ? zErr : "(none)", zWant);
    exit(1);
  }
  sqlite3_free(zErr);
}

/* Each omitted statement parses, frees what it parsed and fails: no crash, no leak
   (the sanitize stage runs this under AddressSanitizer), and the store is untouched. */
static void check_not_supported(bgs_engine *pEng, const char *zSql) {
  check_fails(pEng, zSql, SQLITE_ERROR, "is not supported by this build of SQLite");
}

TEST(test_sqlite_build_omitted_statements_fail_cleanly) {
  bgs_engine *pEng = engine_new();
  enqueue_simple(pEng, "a", 1000);
  check_not_supported(pEng, "ALTER TABLE meta RENAME TO meta2");
  check_not_supported(pEng, "ALTER TABLE meta RENAME COLUMN value TO v");
  check_not_supported(pEng, "ALTER TABLE meta ADD COLUMN extra TEXT DEFAULT 'x'");
  check_not_supported(pEng, "ALTER TABLE meta DROP COLUMN value");
  check_not_supported(pEng, "CREATE VIEW v(a, b) AS SELECT key, value FROM meta WHERE key > 'a'");
  check_not_supported(pEng, "VACUUM");
  check_not_supported(pEng, "VACUUM INTO 'copy.db'");
  check_not_supported(pEng, "ANALYZE");
  check_not_supported(pEng, "REINDEX meta");
  check_not_supported(pEng, "ATTACH 'other.db' AS other");
  check_not_supported(pEng, "DETACH other");
  check_not_supported(pEng,
                      "CREATE TRIGGER t AFTER INSERT ON meta WHEN new.key = 'x' BEGIN"
                      " INSERT INTO meta(key, value) SELECT 'y', 1 FROM meta;"
                      " UPDATE meta SET value = 2 WHERE key = 'y';"
                      " DELETE FROM meta WHERE key = 'y'; SELECT 1; END");
  check_not_supported(pEng, "CREATE TRIGGER t2 BEFORE UPDATE OF value ON meta BEGIN SELECT 1; END");
  check_not_supported(pEng, "DROP TRIGGER IF EXISTS t");
  /* Upserts are compiled out: SQLite then ignores the clause, so a conflict still fails
     the insert loudly (the engine writes INSERT OR IGNORE / OR REPLACE instead). */
  CHECK(sqlite3_exec(pEng->db, "INSERT INTO meta(key, value) VALUES ('k', 1)", NULL, NULL,
                     NULL) == SQLITE_OK);
  check_fails(pEng, "INSERT INTO meta(key, value) VALUES ('k', 2) ON CONFLICT DO NOTHING",
              SQLITE_CONSTRAINT, "UNIQUE constraint failed");
  /* Names still resolve with the schema prefix (sqlite3DbIsNamed stands in for ATTACH's). */
  CHECK(sqlite3_exec(pEng->db, "SELECT count(*) FROM main.items", NULL, NULL, NULL) ==
        SQLITE_OK);
  CHECK_EQ_I64(count_state(pEng, "pending", 1000), 1);
  bgs_close(pEng);
}

/* meta.last_item_id (queue.c, INSERT OR REPLACE instead of an upsert) only ever rises:
   an id is never handed out twice after the newest items are removed. */
TEST(test_sqlite_build_last_item_id_only_rises) {
  bgs_engine *pEng = engine_new();
  int64_t id1 = enqueue_simple(pEng, "a", 1000);
  int64_t id2 = enqueue_simple(pEng, "b", 1000);
  sqlite3_stmt *pStmt = NULL;
  CHECK_OK(bgs__ids_remember(pEng));
  CHECK(sqlite3_exec(pEng->db, "DELETE FROM items", NULL, NULL, NULL) == SQLITE_OK);
  /* A lower maximum (nothing left) must not lower it. */
  CHECK_OK(bgs__ids_remember(pEng));
  CHECK(sqlite3_prepare_v2(pEng->db, "SELECT value FROM meta WHERE key = 'last_item_id'", -1,
                           &pStmt, NULL) == SQLITE_OK);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  CHECK_EQ_I64(sqlite3_column_int64(pStmt, 0), id2);
  sqlite3_finalize(pStmt);
  CHECK(id2 > id1);
  CHECK(enqueue_simple(pEng, "c", 1000) > id2);
  bgs_close(pEng);
}

/* Without triggers SQLite ignores RETURNING; the engine's statement cache refuses SQL that
   asks for it, so a statement that relied on it fails loudly instead of returning nothing. */
TEST(test_sqlite_build_returning_is_refused) {
  bgs_engine *pEng = engine_new();
  CHECK(bgs__stmt(pEng, "DELETE FROM meta WHERE key = 'nothing' RETURNING key") == NULL);
  CHECK(strstr(bgs_errmsg(pEng), "RETURNING") != NULL);
  CHECK(bgs__stmt(pEng, "SELECT count(*) FROM meta") != NULL);
  bgs_close(pEng);
}
