/*
 * schema.c -- the database schema, its version and its migrations.
 *
 * Indexes are chosen so that every hot query is a range scan:
 *  - items_ready: the claimable heads by (queue, priority, id), so a claim reads only
 *    what it returns, however many items wait or back off;
 *  - items_waiting / items_leased: the items whose delay or lease ends first;
 *  - items_entity: the unfinished items of an entity, oldest first;
 *  - items_done: each queue's delivered items, oldest first, for the prune (outcome.c).
 * An item is its entity's head (head = 1) when no older unfinished item of the same
 * entity exists; items without an entity are always heads.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BGS__SCHEMA_VERSION 2

#define ITEMS_ENTITY_SQL                                                            \
  "CREATE INDEX items_entity ON items(entity, id)"                                       \
  "  WHERE entity IS NOT NULL AND " BGS__UNFINISHED_SQL ";"

static const char zSchemaV1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;"
    "CREATE TABLE queues("
    "  name TEXT PRIMARY KEY,"
    "  backoff_kind INTEGER NOT NULL DEFAULT 0,"
    "  initial_ms INTEGER NOT NULL DEFAULT 30000,"
    "  factor REAL NOT NULL DEFAULT 2.0,"
    "  max_ms INTEGER NOT NULL DEFAULT 3600000,"
    "  jitter INTEGER NOT NULL DEFAULT 2,"
    "  max_attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_age_ms INTEGER NOT NULL DEFAULT 0,"
    "  max_items INTEGER NOT NULL DEFAULT 0,"
    "  max_bytes INTEGER NOT NULL DEFAULT 0,"
    "  max_body_bytes INTEGER NOT NULL DEFAULT 16777216,"
    "  extra TEXT NOT NULL DEFAULT '{}'" /* options of later features, as JSON */
    ") WITHOUT ROWID;"
    "CREATE TABLE items("
    "  id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL,"         /* Idempotency-Key, the same on every attempt */
    "  queue TEXT NOT NULL,"
    "  method TEXT NOT NULL,"
    "  url TEXT NOT NULL,"
    "  headers TEXT NOT NULL,"     /* JSON object, lower-case names */
    "  body BLOB,"
    "  body_size INTEGER NOT NULL,"
    "  priority INTEGER NOT NULL," /* 0 critical .. 3 low */
    "  entity TEXT,"
    "  state INTEGER NOT NULL,"
    "  head INTEGER NOT NULL,"
    "  due_at INTEGER NOT NULL,"
    "  lease_until INTEGER,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_status INTEGER,"
    "  reason TEXT,"
    "  extra TEXT,"                /* fields of later features, as JSON */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX items_ready ON items(queue, priority, id) WHERE state = 0 AND head = 1;"
    "CREATE INDEX items_waiting ON items(due_at) WHERE state = 1;"
    "CREATE INDEX items_leased ON items(lease_until) WHERE state = 2;"
    ITEMS_ENTITY_SQL
    "CREATE INDEX items_done ON items(queue) WHERE state = 3;"
    "CREATE TABLE attempts("
    "  seq INTEGER PRIMARY KEY,"
    "  item_id INTEGER NOT NULL,"
    "  attempt INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"   /* HTTP status, 0 = network error */
    "  decision TEXT NOT NULL,"    /* the state chosen */
    "  delay_ms INTEGER"           /* the backoff chosen, if any */
    ");"
    "CREATE INDEX attempts_item ON attempts(item_id, seq);";

/* Version 2: the conflicts inbox (conflict.c). One row per 409/412 that met an item,
   open (state 0) until resolved (state 1); documents as JSON text, NULL when unknown. */
static const char zSchemaV2[] =
    "CREATE TABLE conflicts("
    "  id INTEGER PRIMARY KEY,"
    "  item_id INTEGER NOT NULL,"
    "  status INTEGER NOT NULL,"      /* 409 or 412 */
    "  strategy TEXT NOT NULL,"       /* the strategy that applied */
    "  config TEXT NOT NULL,"         /* the effective conflict configuration, JSON */
    "  state INTEGER NOT NULL DEFAULT 0," /* 0 open, 1 resolved */
    "  needs_remote INTEGER NOT NULL DEFAULT 0," /* the glue must fetch the remote */
    "  remote_gone INTEGER NOT NULL DEFAULT 0,"  /* the remote answered 404/410 */
    "  base TEXT, local TEXT, remote TEXT,"
    "  base_version TEXT, remote_version TEXT,"
    "  fields TEXT NOT NULL DEFAULT '[]'," /* unresolvable paths, JSON array */
    "  merged TEXT,"                  /* the (partial) merge or the document sent */
    "  resolution TEXT,"
    "  reason TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  resolved_at INTEGER"
    ");"
    "CREATE INDEX conflicts_open ON conflicts(state, id);"
    "CREATE INDEX conflicts_item ON conflicts(item_id, id);"
    "PRAGMA user_version = 2;";

static int schema_version(bgs_engine *pEng, int *piVersion) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "PRAGMA user_version");
  if (pStmt == NULL) return bgs__sqlerr(pEng);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *piVersion = sqlite3_column_int(pStmt, 0);
  sqlite3_reset(pStmt);
  return BGS_OK;
}

static int schema_create(bgs_engine *pEng, bgs_time now, const char *zInstallId) {
  sqlite3_stmt *pStmt;
  int rc = bgs__exec(pEng, zSchemaV1);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "INSERT INTO meta(key, value) VALUES ('install_id', ?1), ('created_at', ?2)");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zInstallId ? zInstallId : "bgs", -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(pStmt, 2, now);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return bgs__exec(pEng, "PRAGMA user_version = 1");
}

/* Indexes of older stores that the open replaces (schema_indexes_update). */
typedef struct OldIndexes {
  int bAttemptsItem; /* attempts_item is there */
  int bItemsState;   /* items_state is there */
  int bEntityIn;     /* items_entity is there with its first condition, state IN (...) */
} OldIndexes;

/* Reads the install id, and which old indexes the store still has (see below): one
   statement that every open runs anyway, instead of a DROP at every open. */
static int schema_read_meta(bgs_engine *pEng, OldIndexes *pOld) {
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "SELECT value, EXISTS (SELECT 1 FROM sqlite_schema"
      "  WHERE type = 'index' AND name = 'attempts_item'),"
      " EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = 'items_state'),"
      " EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'index' AND name = 'items_entity'"
      "  AND instr(sql, 'state IN (0,1,2,4,6)') > 0)"
      " FROM meta WHERE key = 'install_id'");
  if (pStmt == NULL) return BGS_CORRUPT;
  if (sqlite3_step(pStmt) != SQLITE_ROW) {
    return bgs__err(pEng, BGS_CORRUPT, "the store has no install id");
  }
  pEng->zInstallId = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
  pOld->bAttemptsItem = sqlite3_column_int(pStmt, 1);
  pOld->bItemsState = sqlite3_column_int(pStmt, 2);
  pOld->bEntityIn = sqlite3_column_int(pStmt, 3);
  sqlite3_reset(pStmt);
  return pEng->zInstallId ? BGS_OK : bgs__err(pEng, BGS_NOMEM, "out of memory");
}

/* Index changes made without a version step: a store either way reads and writes the
   same, so an older engine still opens a store this one changed (and the other way).
   - attempts_item (version 1) serves no query: bgs_attempts filters with "?1 IS NULL OR
     item_id = ?1", which no index can serve, and the log is trimmed by seq. It cost
     every outcome an index insert and delete (two of its seven page writes).
   - items_state(queue, state) gave way to items_done(queue) WHERE state = 3. Only the
     prune needs an index by queue and state, and only for done items; the full index
     changed at every step of an item's life (six entries changed per enqueue -> claim ->
     complete cycle, on up to three leaves of their own), the partial one at the two that
     matter (delivered, pruned). The other readers visited every row they counted
     anyway (status, queue limits, auth release) and now scan the table.
   - items_entity's condition was state IN (0,1,2,4,6), now BGS__UNFINISHED_SQL (see
     internal.h: the same states, without a temporary B-tree at every row written). The
     queries name the new condition, which the old index does not match: they would scan
     the table, so the index is made anew. */
static int schema_indexes_update(bgs_engine *pEng, const OldIndexes *pOld) {
  int rc = bgs__begin(pEng);
  if (rc == BGS_OK && pOld->bAttemptsItem) rc = bgs__exec(pEng, "DROP INDEX attempts_item");
  if (rc == BGS_OK && pOld->bItemsState) {
    rc = bgs__exec(pEng,
                   "DROP INDEX items_state;"
                   "CREATE INDEX IF NOT EXISTS items_done ON items(queue) WHERE state = 3;");
  }
  if (rc == BGS_OK && pOld->bEntityIn) {
    rc = bgs__exec(pEng, "DROP INDEX items_entity;" ITEMS_ENTITY_SQL);
  }
  if (rc == BGS_OK) rc = bgs__commit(pEng);
  else bgs__rollback(pEng, rc);
  return rc;
}

int bgs__schema_ensure(bgs_engine *pEng, bgs_time now, const char *zInstallId) {
  int iVersion = 0;
  OldIndexes old = {0, 0, 0};
  int rc = schema_version(pEng, &iVersion);
  if (rc != BGS_OK) return rc == BGS_ERROR ? BGS_CORRUPT : rc;
  if (iVersion > BGS__SCHEMA_VERSION) {
    return bgs__err(pEng, BGS_CORRUPT, "the store has schema %d, newer than this engine (%d)",
                    iVersion, BGS__SCHEMA_VERSION);
  }
  rc = bgs__begin(pEng);
  if (rc != BGS_OK) return rc;
  if (iVersion == 0) rc = schema_create(pEng, now, zInstallId);
  /* Migrations from older versions go here, one step per version, in order. */
  if (rc == BGS_OK && iVersion < 2) rc = bgs__exec(pEng, zSchemaV2);
  if (rc == BGS_OK) rc = bgs__commit(pEng);
  else bgs__rollback(pEng, rc);
  if (rc == BGS_OK) rc = schema_read_meta(pEng, &old);
  if (rc == BGS_OK && (old.bAttemptsItem || old.bItemsState || old.bEntityIn)) {
    rc = schema_indexes_update(pEng, &old);
  }
  return rc;
}
