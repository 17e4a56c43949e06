/*
 * status.c -- read-only views: counts per state and queue, the next wake-up, item
 * listings and the attempt log for inspectors. Nothing here writes.
 */
#include <string.h>

#include "internal.h"

int bgs_status(bgs_engine *pEng, const char *zQueue, bgs_time now, char **pzOut) {
  /* Waiting items whose delay ended and expired leases count as pending: that is what
     the next claim will see. nextWakeAt is the earliest moment anything becomes ready:
     now when something is ready, else the first end of a delay or a lease. */
  static const char zSql[] =
      "WITH s AS ("
      "  SELECT queue, CASE"
      "    WHEN state = 1 AND due_at <= ?2 THEN 0"
      "    WHEN state = 2 AND lease_until <= ?2 THEN 0"
      "    ELSE state END AS st, count(*) AS n"
      "  FROM items WHERE ?1 IS NULL OR queue = ?1 GROUP BY 1, 2),"
      " q AS ("
      "  SELECT name FROM queues WHERE ?1 IS NULL OR name = ?1),"
      " c AS ("
      "  SELECT q.name AS queue, json_object("
      "   'pending', coalesce(sum(n) FILTER (WHERE st = 0), 0),"
      "   'waiting', coalesce(sum(n) FILTER (WHERE st = 1), 0),"
      "   'inflight', coalesce(sum(n) FILTER (WHERE st = 2), 0),"
      "   'done', coalesce(sum(n) FILTER (WHERE st = 3), 0),"
      "   'conflict', coalesce(sum(n) FILTER (WHERE st = 4), 0),"
      "   'dead', coalesce(sum(n) FILTER (WHERE st = 5), 0),"
      "   'auth', coalesce(sum(n) FILTER (WHERE st = 6), 0)) AS counts"
      "  FROM q LEFT JOIN s ON s.queue = q.name GROUP BY q.name)"
      " SELECT json_object("
      "  'counts', json_object("
      "   'pending', coalesce((SELECT sum(n) FROM s WHERE st = 0), 0),"
      "   'waiting', coalesce((SELECT sum(n) FROM s WHERE st = 1), 0),"
      "   'inflight', coalesce((SELECT sum(n) FROM s WHERE st = 2), 0),"
      "   'done', coalesce((SELECT sum(n) FROM s WHERE st = 3), 0),"
      "   'conflict', coalesce((SELECT sum(n) FROM s WHERE st = 4), 0),"
      "   'dead', coalesce((SELECT sum(n) FROM s WHERE st = 5), 0),"
      "   'auth', coalesce((SELECT sum(n) FROM s WHERE st = 6), 0)),"
      "  'nextWakeAt', CASE"
      "   WHEN EXISTS (SELECT 1 FROM items WHERE state = 0 AND head = 1"
      "                AND (?1 IS NULL OR queue = ?1)) THEN ?2"
      "   ELSE (SELECT min(t) FROM ("
      "     SELECT min(due_at) AS t FROM items WHERE state = 1 AND (?1 IS NULL OR queue = ?1)"
      "     UNION ALL"
      "     SELECT min(lease_until) FROM items WHERE state = 2 AND (?1 IS NULL OR queue = ?1)))"
      "   END,"
      "  'queues', json((SELECT json_group_object(queue, json(counts)) FROM c)))";
  sqlite3_stmt *pStmt;
  int rc;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  pStmt = bgs__stmt(pEng, zSql);
  if (pStmt == NULL) return BGS_ERROR;
  if (zQueue) sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, now);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  return rc;
}

int bgs_items(bgs_engine *pEng, const char *zJson, char **pzOut) {
  static const char zSql[] =
      "SELECT json_group_array(json_object('id', id, 'key', key, 'queue', queue,"
      "  'method', method, 'url', url, 'state', CASE state WHEN 0 THEN 'pending'"
      "   WHEN 1 THEN 'waiting' WHEN 2 THEN 'inflight' WHEN 3 THEN 'done'"
      "   WHEN 4 THEN 'conflict' WHEN 5 THEN 'dead' ELSE 'auth' END,"
      "  'priority', CASE priority WHEN 0 THEN 'critical' WHEN 1 THEN 'high'"
      "   WHEN 2 THEN 'normal' ELSE 'low' END,"
      "  'entity', entity, 'attempts', attempts, 'dueAt', due_at, 'createdAt', created_at,"
      "  'updatedAt', updated_at, 'lastStatus', last_status, 'reason', reason,"
      "  'bodyRef', extra -> '$.bodyRef'))"
      " FROM (SELECT * FROM (SELECT * FROM items"
      "  WHERE (json_extract(?1, '$.queue') IS NULL OR queue = json_extract(?1, '$.queue'))"
      "   AND (?2 < 0 OR state = ?2)"
      "  ORDER BY id DESC LIMIT ?3) ORDER BY id)";
  sqlite3_stmt *pStmt;
  int eState = -1;
  int64_t nLimit = 1000;
  int rc;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, -1);
  if (zJson == NULL) zJson = "{}";
  rc = bgs__json_object_check(pEng, zJson, "items filter");
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, "SELECT json_extract(?1, '$.state'), json_extract(?1, '$.limit')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    eState = bgs__state_from_name((const char *)sqlite3_column_text(pStmt, 0));
    if (eState < 0) rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "unknown state");
  }
  if (sqlite3_column_type(pStmt, 1) == SQLITE_INTEGER) nLimit = sqlite3_column_int64(pStmt, 1);
  sqlite3_reset(pStmt);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, zSql);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_int(pStmt, 2, eState);
  sqlite3_bind_int64(pStmt, 3, nLimit);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  return rc;
}

int bgs_attempts(bgs_engine *pEng, const char *zJson, char **pzOut) {
  static const char zSql[] =
      "SELECT json_group_array(json_object('seq', seq, 'id', item_id, 'attempt', attempt,"
      "  'at', at, 'status', status, 'state', decision, 'delayMs', delay_ms))"
      " FROM (SELECT * FROM (SELECT * FROM attempts WHERE (?1 IS NULL OR item_id = ?1)"
      "  AND seq > (SELECT max(seq) FROM attempts) - ?3"
      "  ORDER BY seq DESC LIMIT ?2) ORDER BY seq)";
  sqlite3_stmt *pStmt;
  int64_t id = 0, nLimit = 100;
  int bId = 0, rc = BGS_OK;
  const char *zType;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, -1);
  if (zJson == NULL) zJson = "{}";
  rc = bgs__json_object_check(pEng, zJson, "attempts filter");
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "SELECT json_type(?1, '$.id'), json_extract(?1, '$.id'),"
                    " json_type(?1, '$.limit'), json_extract(?1, '$.limit')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zType = (const char *)sqlite3_column_text(pStmt, 0);
  if (zType != NULL && strcmp(zType, "null") != 0) {
    if (strcmp(zType, "integer") != 0) rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "id must be an integer");
    id = sqlite3_column_int64(pStmt, 1);
    bId = 1;
  }
  zType = (const char *)sqlite3_column_text(pStmt, 2);
  if (rc == BGS_OK && zType != NULL && strcmp(zType, "null") != 0) {
    nLimit = sqlite3_column_int64(pStmt, 3);
    if (strcmp(zType, "integer") != 0 || nLimit < 1 || nLimit > 100000) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "limit must be an integer from 1 to 100000");
    }
  }
  sqlite3_reset(pStmt);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, zSql);
  if (pStmt == NULL) return BGS_ERROR;
  if (bId) sqlite3_bind_int64(pStmt, 1, id);
  sqlite3_bind_int64(pStmt, 2, nLimit);
  /* The newest nMaxAttemptLog only: older entries wait for the next trim (outcome.c). */
  sqlite3_bind_int64(pStmt, 3, pEng->cfg.nMaxAttemptLog);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  return rc;
}
