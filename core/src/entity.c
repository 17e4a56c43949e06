/*
 * entity.c -- strict order per entity: only the oldest unfinished item of an entity is
 * its head, and only heads are claimable. An entity that fails blocks only itself.
 */
#include "internal.h"

/* Called after an item of the entity finished or left. The oldest unfinished item becomes
   the head -- unless an unfinished head is there already: a dead letter sent again joins
   the back of the line (dead.c) although its id is older than the head's, and promoting
   it then made two heads, two items of one entity in flight (found by fuzz_engine_calls). */
int bgs__entity_advance(bgs_engine *pEng, const char *zEntity) {
  sqlite3_stmt *pStmt;
  if (zEntity == NULL) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET head = 1 WHERE id = ("
                    "  SELECT id FROM items WHERE entity = ?1 AND state IN " BGS__UNFINISHED_SQL
                    "  ORDER BY id LIMIT 1) AND head = 0"
                    " AND NOT EXISTS (SELECT 1 FROM items WHERE entity = ?1 AND head = 1"
                    "  AND state IN " BGS__UNFINISHED_SQL ")");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zEntity, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}
