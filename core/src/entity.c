/*
 * entity.c -- strict order per entity: only the oldest unfinished item of an entity is
 * its head, and only heads are claimable. An entity that fails blocks only itself.
 */
#include <stdlib.h>

#include "internal.h"

/* Reads item id's entity (NULL when it has none) and, with pzQueue, its queue, before a
   statement changes or removes the item: what RETURNING would give, which this build of
   SQLite leaves out (core/cmake/sqlite.cmake). Both are the caller's to free(). */
int bgs__item_entity(bgs_engine *pEng, int64_t id, char **pzEntity, char **pzQueue) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT entity, queue FROM items WHERE id = ?1");
  int rc = BGS_OK;
  *pzEntity = NULL;
  if (pzQueue) *pzQueue = NULL;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    *pzEntity = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
    if (*pzEntity == NULL) rc = BGS_NOMEM;
  }
  if (rc == BGS_OK && pzQueue) {
    *pzQueue = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
    if (*pzQueue == NULL) rc = BGS_NOMEM;
  }
  sqlite3_reset(pStmt);
  if (rc != BGS_OK) {
    free(*pzEntity);
    *pzEntity = NULL;
    return bgs__err(pEng, BGS_NOMEM, "out of memory");
  }
  return BGS_OK;
}

/* Called after an item of the entity finished or left. The oldest unfinished item becomes
   the head -- unless an unfinished head is there already: a dead letter sent again joins
   the back of the line (dead.c) although its id is older than the head's, and promoting
   it then made two heads, two items of one entity in flight (found by fuzz_engine_calls). */
int bgs__entity_advance(bgs_engine *pEng, const char *zEntity) {
  sqlite3_stmt *pStmt;
  if (zEntity == NULL) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET head = 1 WHERE id = ("
                    "  SELECT id FROM items WHERE entity = ?1 AND " BGS__UNFINISHED_SQL
                    "  ORDER BY id LIMIT 1) AND head = 0"
                    " AND NOT EXISTS (SELECT 1 FROM items WHERE entity = ?1 AND head = 1"
                    "  AND " BGS__UNFINISHED_SQL ")");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zEntity, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}
