/*
 * ahead.c -- what the next claim of a queue would hand out, and until when that holds:
 * the "head start" of a cold start (sw/HeadStart.js). The glue stores this beside every
 * flush, so that a worker woken by `sync` can send that request while its module
 * compiles and its store loads, and claim it (bgs_claim_item) once the engine is open.
 *
 * Read-only. The answer is exact, not a guess: claim picks the first ready entity head
 * by (priority, id) after waking due items and expired leases, and expires items older
 * than maxAgeMs. Until the first due item or lease end anywhere (global minimums: two
 * index lookups, where a per-queue minimum would scan) and until the item itself would
 * expire, no wake-up or expiry can change that pick, so as long as the stored state is
 * the engine's state, a claim of that item at any moment before validUntil is exactly
 * what bgs_claim would have done.
 */
#include "internal.h"

int bgs_ahead(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut) {
  bgs__queue q;
  sqlite3_stmt *pStmt;
  int64_t id = 0, nCreated = 0, nUntil = INT64_MAX;
  int rc;
  if (pEng == NULL || zQueue == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  rc = bgs__queue_load(pEng, zQueue, &q);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "SELECT id, created_at FROM items WHERE queue = ?1 AND state = 0 AND head = 1"
                    " ORDER BY priority, id LIMIT 1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) == SQLITE_ROW) {
    id = sqlite3_column_int64(pStmt, 0);
    nCreated = sqlite3_column_int64(pStmt, 1);
  }
  sqlite3_reset(pStmt);
  if (id > 0) {
    pStmt = bgs__stmt(pEng,
                      "SELECT min(t) FROM ("
                      " SELECT min(due_at) AS t FROM items WHERE state = 1"
                      " UNION ALL SELECT min(lease_until) FROM items WHERE state = 2)");
    if (pStmt == NULL) return BGS_ERROR;
    if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
    if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL) nUntil = sqlite3_column_int64(pStmt, 0);
    sqlite3_reset(pStmt);
    /* claim expires it once now > created_at + maxAgeMs */
    if (q.nMaxAgeMs > 0 && nCreated + q.nMaxAgeMs + 1 < nUntil) nUntil = nCreated + q.nMaxAgeMs + 1;
    if (nUntil <= now) id = 0; /* something wakes (or it expires) before any claim could use it */
  }
  if (id == 0) return bgs__out_text(pEng, (const unsigned char *)"{\"item\":null,\"validUntil\":null}", pzOut);
  pStmt = bgs__stmt(pEng, "SELECT json_object('item', json((" BGS__LEASED_SQL ")), 'validUntil', ?2)");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (nUntil == INT64_MAX) sqlite3_bind_null(pStmt, 2);
  else sqlite3_bind_int64(pStmt, 2, nUntil);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  return rc;
}
