/*
 * dead.c -- what the app does with items the engine gave up on or parked: retry or
 * discard a dead letter, release the items that wait for credentials.
 *
 * Invariants: a retried dead letter keeps its id and idempotency key (the server may
 * have seen it), starts its attempt count again and rejoins its entity's line: it is the
 * head at once when the entity has nothing unfinished, otherwise it waits, and takes its
 * place by id when the current head finishes (a head is never displaced: it may be in
 * flight). Discarding removes the item; entity order is unaffected because a dead letter
 * no longer blocks its entity.
 */
#include <stdlib.h>

#include "internal.h"

/* Reads the state of item id (BGS_NOT_FOUND recorded when there is none). */
static int item_state(bgs_engine *pEng, int64_t id, int *peState) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT state FROM items WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) {
    sqlite3_reset(pStmt);
    return bgs__err(pEng, BGS_NOT_FOUND, "no item %lld", (long long)id);
  }
  *peState = sqlite3_column_int(pStmt, 0);
  sqlite3_reset(pStmt);
  return BGS_OK;
}

static int dead_check(bgs_engine *pEng, int64_t id) {
  int eState = -1;
  int rc = item_state(pEng, id, &eState);
  if (rc == BGS_OK && eState != BGS__ST_DEAD) {
    rc = bgs__err(pEng, BGS_INVALID_STATE, "item %lld is %s, not dead", (long long)id,
                  bgs__state_name(eState));
  }
  return rc;
}

static int dead_retry(bgs_engine *pEng, int64_t id, bgs_time now) {
  sqlite3_stmt *pStmt;
  int rc = dead_check(pEng, id);
  if (rc != BGS_OK) return rc;
  /* attempts goes back to 0, so an item that was ever handed out keeps that fact in
     extra.sent: it may have reached the server (a lease can run out with no outcome, and
     no status then), and coalesce.c must never rewrite it. SET reads the old row. */
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET state = 0, attempts = 0, due_at = ?2, lease_until = NULL,"
                    " extra = CASE WHEN attempts > 0 OR last_status IS NOT NULL"
                    "  THEN json_set(COALESCE(extra, '{}'), '$.sent', 1) ELSE extra END,"
                    " reason = NULL, updated_at = ?2,"
                    " head = entity IS NULL OR NOT EXISTS (SELECT 1 FROM items AS o"
                    "  WHERE o.entity = items.entity AND o.id <> items.id"
                    "  AND o." BGS__UNFINISHED_SQL ")"
                    " WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_int64(pStmt, 2, now);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

static int dead_discard(bgs_engine *pEng, int64_t id) {
  sqlite3_stmt *pStmt;
  char *zEntity = NULL;
  int rc = dead_check(pEng, id);
  if (rc == BGS_OK) rc = bgs__ids_remember(pEng); /* it may be the newest item */
  if (rc != BGS_OK) return rc;
  rc = bgs__item_entity(pEng, id, &zEntity, NULL);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, "DELETE FROM items WHERE id = ?1");
  if (pStmt == NULL) rc = BGS_ERROR;
  else {
    sqlite3_bind_int64(pStmt, 1, id);
    if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
  }
  /* A dead letter does not block its entity, so this changes nothing unless the store
     was written by an older engine; it keeps the head invariant obviously true. */
  if (rc == BGS_OK) rc = bgs__entity_advance(pEng, zEntity);
  free(zEntity);
  return rc;
}

int bgs_dead_retry(bgs_engine *pEng, int64_t id, bgs_time now) {
  int rc;
  if (pEng == NULL) return BGS_MISUSE;
  bgs__enter(pEng, now);
  rc = bgs__begin(pEng);
  if (rc != BGS_OK) return rc;
  rc = dead_retry(pEng, id, now);
  return rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
}

int bgs_dead_discard(bgs_engine *pEng, int64_t id, bgs_time now) {
  int rc;
  if (pEng == NULL) return BGS_MISUSE;
  bgs__enter(pEng, now);
  rc = bgs__begin(pEng);
  if (rc != BGS_OK) return rc;
  rc = dead_discard(pEng, id);
  return rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
}

static int auth_release(bgs_engine *pEng, const char *zQueue, bgs_time now, int64_t *pn) {
  sqlite3_stmt *pStmt;
  if (zQueue != NULL) {
    bgs__queue q;
    int rc = bgs__queue_load(pEng, zQueue, &q);
    if (rc != BGS_OK) return rc;
  }
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET state = 0, due_at = ?2, reason = NULL, updated_at = ?2"
                    " WHERE state = 6 AND (?1 IS NULL OR queue = ?1)");
  if (pStmt == NULL) return BGS_ERROR;
  if (zQueue) sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, now);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  *pn = sqlite3_changes64(pEng->db);
  return BGS_OK;
}

int bgs_auth_release(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut) {
  int64_t n = 0;
  int rc;
  if (pEng == NULL) return BGS_MISUSE;
  if (pzOut) *pzOut = NULL;
  bgs__enter(pEng, now);
  rc = bgs__begin(pEng);
  if (rc != BGS_OK) return rc;
  rc = auth_release(pEng, zQueue, now, &n);
  rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
  if (rc == BGS_OK && pzOut) {
    char *z = sqlite3_mprintf("{\"released\":%lld}", (long long)n);
    if (z == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
    rc = bgs__out_text(pEng, (const unsigned char *)z, pzOut);
    sqlite3_free(z);
  }
  return rc;
}
