/*
 * conflict.c -- what happens after a 409/412: the strategy of the item (or its queue)
 * decides, and every conflict is recorded in the conflicts table (the inbox), resolved
 * automatically or open for the app. Nothing is silently lost: a dropped local change
 * stays in its conflict record (and its item keeps its body).
 *
 * Strategies (see the protocol block in bgsync.h):
 *   server-wins  the local change is dropped: item done (reason "server-wins"),
 *                conflict resolved "server-wins";
 *   client-wins  re-sent against the remote version: item pending again;
 *   merge        three-way merge (merge.c); re-sent if every field was decided,
 *                parked with the unresolvable paths otherwise;
 *   manual       parked for the app;  custom  parked with custom = true for the glue.
 *
 * Invariants:
 *  - an item has at most one open conflict, and it is in state conflict while it has
 *    one, so its entity stays blocked (BGS__UNFINISHED_SQL) until it is resolved;
 *  - a re-send is a new request: the item gets a new idempotency key
 *    ("<install>.<id>.r<round>"), the same on all of its own retries, because a server
 *    that remembers the 412 it answered to the old key would answer it again;
 *  - re-sends per item are bounded (BGS__MAX_CONFLICT_ROUNDS); past that the conflict
 *    is parked, so two devices insisting on client-wins cannot loop forever;
 *  - open conflicts are never deleted; of the resolved ones the newest
 *    BGS__MAX_RESOLVED_CONFLICTS are kept;
 *  - a record's item exists: the pruning of delivered items (outcome.c) spares done
 *    items that a conflict record refers to, so the JOINs below always find it.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define BGS__MAX_CONFLICT_ROUNDS 16
#define BGS__MAX_VERSION 1024
#define BGS__MAX_RESOLVED_CONFLICTS 1000 /* resolved records kept; open ones always are */

static const char *const azStrategy[] = {"server-wins", "client-wins", "merge", "manual", "custom",
                                         NULL};
enum { STRAT_SERVER = 0, STRAT_CLIENT = 1, STRAT_MERGE = 2, STRAT_MANUAL = 3, STRAT_CUSTOM = 4 };

static int strategy_from_name(const char *zName) {
  int i;
  if (zName == NULL) return -1;
  for (i = 0; azStrategy[i] != NULL; i++) {
    if (strcmp(azStrategy[i], zName) == 0) return i;
  }
  return -1;
}

/* Checks a conflict configuration object (queue "conflict" or item "conflictStrategy"). */
static int config_check(bgs_engine *pEng, const char *zConf, const char *zWhat) {
  sqlite3_stmt *pStmt;
  int rc = BGS_OK;
  pStmt = bgs__stmt(pEng, "SELECT json_type(?1, '$.strategy'), json_extract(?1, '$.strategy')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zConf, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL &&
      (strcmp((const char *)sqlite3_column_text(pStmt, 0), "text") != 0 ||
       strategy_from_name((const char *)sqlite3_column_text(pStmt, 1)) < 0)) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT,
                  "%s.strategy must be server-wins, client-wins, merge, manual or custom", zWhat);
  }
  sqlite3_reset(pStmt);
  if (rc == BGS_OK) rc = bgs__rules_check(pEng, zConf);
  return rc;
}

int bgs__conflict_configure(bgs_engine *pEng, const char *zJson, const char *zQueue) {
  sqlite3_stmt *pStmt;
  char *zConf = NULL;
  int rc = BGS_OK;
  pStmt = bgs__stmt(pEng, "SELECT json_type(?1, '$.conflict'), ?1 -> '$.conflict'");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) == SQLITE_NULL) {
    sqlite3_reset(pStmt);
    return BGS_OK; /* absent: keep */
  }
  if (strcmp((const char *)sqlite3_column_text(pStmt, 0), "object") != 0) {
    sqlite3_reset(pStmt);
    return bgs__err(pEng, BGS_INVALID_ARGUMENT, "conflict must be an object");
  }
  zConf = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
  sqlite3_reset(pStmt);
  if (zConf == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  rc = config_check(pEng, zConf, "conflict");
  if (rc == BGS_OK) {
    /* The new configuration replaces the previous one as a whole. */
    pStmt = bgs__stmt(pEng,
                      "UPDATE queues SET extra = json_set(coalesce(extra, '{}'), '$.conflict',"
                      " json(?2)) WHERE name = ?1");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zConf, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
    }
  }
  free(zConf);
  return rc;
}

int bgs__conflict_enqueue_fields(bgs_engine *pEng, const char *zJson, char **pzExtra) {
  sqlite3_stmt *pStmt;
  const char *zType;
  char *zVersion = NULL, *zDoc = NULL, *zConf = NULL;
  int64_t nEdited = -1;
  int rc = BGS_OK;
  *pzExtra = NULL;
  pStmt = bgs__stmt(pEng,
                    "SELECT json_type(?1, '$.baseVersion'), json_extract(?1, '$.baseVersion'),"
                    " json_type(?1, '$.baseDocument'), ?1 -> '$.baseDocument',"
                    " json_type(?1, '$.editedAt'), json_extract(?1, '$.editedAt'),"
                    " json_type(?1, '$.conflictStrategy'), ?1 -> '$.conflictStrategy',"
                    " json_extract(?1, '$.conflictStrategy')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zType = (const char *)sqlite3_column_text(pStmt, 0);
  if (zType != NULL && strcmp(zType, "null") != 0) {
    if (strcmp(zType, "text") != 0 || sqlite3_column_bytes(pStmt, 1) < 1 ||
        sqlite3_column_bytes(pStmt, 1) > BGS__MAX_VERSION) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "baseVersion must be a string of 1 to %d bytes",
                    BGS__MAX_VERSION);
    } else {
      zVersion = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
    }
  }
  zType = (const char *)sqlite3_column_text(pStmt, 2);
  if (rc == BGS_OK && zType != NULL && strcmp(zType, "null") != 0) {
    zDoc = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
  }
  zType = (const char *)sqlite3_column_text(pStmt, 4);
  if (rc == BGS_OK && zType != NULL && strcmp(zType, "null") != 0) {
    if (strcmp(zType, "integer") != 0 || sqlite3_column_int64(pStmt, 5) < 0) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "editedAt must be a time in ms (an integer >= 0)");
    } else {
      nEdited = sqlite3_column_int64(pStmt, 5);
    }
  }
  zType = (const char *)sqlite3_column_text(pStmt, 6);
  if (rc == BGS_OK && zType != NULL && strcmp(zType, "null") != 0) {
    if (strcmp(zType, "text") == 0) {
      const char *zName = (const char *)sqlite3_column_text(pStmt, 8);
      if (strategy_from_name(zName) < 0) {
        rc = bgs__err(pEng, BGS_INVALID_ARGUMENT,
                      "conflictStrategy must be server-wins, client-wins, merge, manual or custom");
      } else {
        zConf = sqlite3_mprintf("{\"strategy\":\"%s\"}", zName);
        if (zConf) {
          char *z = bgs__strdup(zConf);
          sqlite3_free(zConf);
          zConf = z;
        }
      }
    } else if (strcmp(zType, "object") == 0) {
      zConf = bgs__strdup((const char *)sqlite3_column_text(pStmt, 7));
    } else {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "conflictStrategy must be a string or an object");
    }
  }
  sqlite3_reset(pStmt);
  /* Checks that run statements of their own come after the reset. */
  if (rc == BGS_OK && zDoc != NULL) rc = bgs__doc_check(pEng, zDoc, strlen(zDoc), "baseDocument");
  if (rc == BGS_OK && zConf != NULL) rc = config_check(pEng, zConf, "conflictStrategy");
  if (rc == BGS_OK && (zVersion || zDoc || zConf || nEdited >= 0)) {
    pStmt = bgs__stmt(pEng,
                      "SELECT json_group_object(k, json(v)) FROM ("
                      " SELECT 'baseVersion' AS k,"
                      "  CASE WHEN ?1 IS NOT NULL THEN json_quote(?1) END AS v"
                      " UNION ALL SELECT 'baseDocument', ?2"
                      " UNION ALL SELECT 'editedAt', CAST(?3 AS TEXT)"
                      " UNION ALL SELECT 'conflict', ?4) WHERE v IS NOT NULL");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      if (zVersion) sqlite3_bind_text(pStmt, 1, zVersion, -1, SQLITE_STATIC);
      if (zDoc) sqlite3_bind_text(pStmt, 2, zDoc, -1, SQLITE_STATIC);
      if (nEdited >= 0) sqlite3_bind_int64(pStmt, 3, nEdited);
      if (zConf) sqlite3_bind_text(pStmt, 4, zConf, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) != SQLITE_ROW) rc = bgs__sqlerr(pEng);
      else rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzExtra);
      sqlite3_reset(pStmt);
    }
  }
  if (rc == BGS_OK && (zVersion == NULL && zDoc == NULL && zConf == NULL && nEdited < 0)) {
    *pzExtra = NULL;
  }
  free(zVersion);
  free(zDoc);
  free(zConf);
  return rc;
}

/* ---- the conflict record and its decision ---- */

typedef struct Conflict {
  int64_t id, iItem;
  int eStrategy;
  char *zConfig;  /* effective conflict configuration (rules), JSON */
  char *zBase, *zLocal, *zRemote, *zVersion; /* NULL = unknown */
  int bRemoteGone;  /* the resource no longer exists on the server */
  int64_t nEdited;  /* the local edit time, -1 = unknown */
  int64_t nRound;   /* re-sends so far */
} Conflict;

static void conflict_free(Conflict *c) {
  free(c->zConfig);
  free(c->zBase);
  free(c->zLocal);
  free(c->zRemote);
  free(c->zVersion);
  memset(c, 0, sizeof(*c));
}

static int conflict_read(bgs_engine *pEng, int64_t id, Conflict *c, int *pbOpen) {
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "SELECT c.item_id, c.strategy, c.config, c.base, c.local, c.remote, c.remote_version,"
      " c.remote_gone, c.state, coalesce(json_extract(i.extra, '$.editedAt'), -1),"
      " coalesce(json_extract(i.extra, '$.round'), 0), i.state"
      " FROM conflicts AS c JOIN items AS i ON i.id = c.item_id WHERE c.id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  memset(c, 0, sizeof(*c));
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) {
    sqlite3_reset(pStmt);
    return bgs__err(pEng, BGS_NOT_FOUND, "no conflict %lld", (long long)id);
  }
  c->id = id;
  c->iItem = sqlite3_column_int64(pStmt, 0);
  c->eStrategy = strategy_from_name((const char *)sqlite3_column_text(pStmt, 1));
  c->zConfig = bgs__strdup((const char *)sqlite3_column_text(pStmt, 2));
  c->zBase = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
  c->zLocal = bgs__strdup((const char *)sqlite3_column_text(pStmt, 4));
  c->zRemote = bgs__strdup((const char *)sqlite3_column_text(pStmt, 5));
  c->zVersion = bgs__strdup((const char *)sqlite3_column_text(pStmt, 6));
  c->bRemoteGone = sqlite3_column_int(pStmt, 7);
  *pbOpen = sqlite3_column_int(pStmt, 8) == 0 && sqlite3_column_int(pStmt, 11) == BGS__ST_CONFLICT;
  c->nEdited = sqlite3_column_int64(pStmt, 9);
  c->nRound = sqlite3_column_int64(pStmt, 10);
  sqlite3_reset(pStmt);
  if (c->eStrategy < 0) c->eStrategy = STRAT_MANUAL;
  return c->zConfig ? BGS_OK : bgs__err(pEng, BGS_NOMEM, "out of memory");
}

/* Leaves the conflict open (the item stays in state conflict, its entity blocked). */
static int conflict_park(bgs_engine *pEng, const Conflict *c, int bNeedsRemote,
                         const char *zReason, const char *zFields, const char *zMerged) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "UPDATE conflicts SET needs_remote = ?2, reason = ?3,"
                                  " fields = coalesce(?4, '[]'), merged = ?5 WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, c->id);
  sqlite3_bind_int(pStmt, 2, bNeedsRemote);
  sqlite3_bind_text(pStmt, 3, zReason, -1, SQLITE_STATIC);
  if (zFields) sqlite3_bind_text(pStmt, 4, zFields, -1, SQLITE_STATIC);
  if (zMerged) sqlite3_bind_text(pStmt, 5, zMerged, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

static int conflict_close(bgs_engine *pEng, const Conflict *c, const char *zResolution,
                          const char *zMerged, bgs_time now) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "UPDATE conflicts SET state = 1, needs_remote = 0,"
                                  " resolution = ?2, merged = coalesce(?3, merged),"
                                  " resolved_at = ?4 WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, c->id);
  sqlite3_bind_text(pStmt, 2, zResolution, -1, SQLITE_STATIC);
  if (zMerged) sqlite3_bind_text(pStmt, 3, zMerged, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 4, now);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  /* The record of resolved conflicts is bounded like the attempt log: newest kept. */
  pStmt = bgs__stmt(pEng,
                    "DELETE FROM conflicts WHERE state = 1 AND id <= (SELECT id FROM conflicts"
                    " WHERE state = 1 ORDER BY id DESC LIMIT 1 OFFSET ?1)");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int(pStmt, 1, BGS__MAX_RESOLVED_CONFLICTS);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

/* The local change gives way: the item is done (its body kept), the entity moves on.
   The queue's delivered history is pruned as after any delivery; this item stays, since
   its conflict record refers to it. */
static int conflict_drop(bgs_engine *pEng, const Conflict *c, const char *zResolution,
                         bgs_time now) {
  sqlite3_stmt *pStmt;
  char *zEntity = NULL, *zQueue = NULL;
  int rc = bgs__item_entity(pEng, c->iItem, &zEntity, &zQueue);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET state = 3, lease_until = NULL, reason = ?2,"
                    " updated_at = ?3 WHERE id = ?1");
  if (pStmt == NULL) rc = BGS_ERROR;
  else {
    sqlite3_bind_int64(pStmt, 1, c->iItem);
    sqlite3_bind_text(pStmt, 2, zResolution, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 3, now);
    if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
  }
  if (rc == BGS_OK) rc = bgs__entity_advance(pEng, zEntity);
  if (rc == BGS_OK) rc = conflict_close(pEng, c, zResolution, NULL, now);
  if (rc == BGS_OK) rc = bgs__done_prune(pEng, zQueue, c->iItem);
  free(zEntity);
  free(zQueue);
  return rc;
}

/* Sends again against the remote version (none when the resource is gone): a new
   request with a new key, the body replaced by zDoc when given (a PATCH then becomes a
   PUT of the whole document). */
static int conflict_resend(bgs_engine *pEng, const Conflict *c, const char *zDoc,
                           const char *zResolution, bgs_time now) {
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "UPDATE items SET state = 0, due_at = ?2, lease_until = NULL, updated_at = ?2,"
      " reason = ?7,"
      " key = ?3 || '.' || id || '.r' || (?6 + 1),"
      " extra = CASE WHEN ?4 IS NULL"
      "  THEN json_remove(json_set(coalesce(extra, '{}'), '$.round', ?6 + 1),"
      "   '$.baseVersion', '$.baseDocument')"
      "  WHEN ?5 IS NULL"
      "  THEN json_remove(json_set(coalesce(extra, '{}'), '$.round', ?6 + 1, '$.baseVersion', ?4),"
      "   '$.baseDocument')"
      "  ELSE json_set(coalesce(extra, '{}'), '$.round', ?6 + 1, '$.baseVersion', ?4,"
      "   '$.baseDocument', json(?5)) END,"
      " headers = CASE WHEN json_type(headers, '$.\"if-match\"') IS NULL THEN headers"
      "  WHEN ?4 IS NULL THEN json_remove(headers, '$.\"if-match\"')"
      "  ELSE json_set(headers, '$.\"if-match\"', ?4) END,"
      " body = coalesce(?8, body), body_size = coalesce(length(CAST(?8 AS BLOB)), body_size),"
      " method = CASE WHEN ?8 IS NOT NULL AND method = 'PATCH' THEN 'PUT' ELSE method END"
      " WHERE id = ?1");
  int rc;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, c->iItem);
  sqlite3_bind_int64(pStmt, 2, now);
  sqlite3_bind_text(pStmt, 3, pEng->zInstallId, -1, SQLITE_STATIC);
  if (c->zVersion) sqlite3_bind_text(pStmt, 4, c->zVersion, -1, SQLITE_STATIC);
  if (c->zRemote) sqlite3_bind_text(pStmt, 5, c->zRemote, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 6, c->nRound);
  sqlite3_bind_text(pStmt, 7, zResolution, -1, SQLITE_STATIC);
  if (zDoc) sqlite3_bind_blob(pStmt, 8, zDoc, (int)strlen(zDoc), SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  rc = conflict_close(pEng, c, zResolution, zDoc, now);
  return rc;
}

/* Applies the strategy to what is known about the conflict. */
static int conflict_run(bgs_engine *pEng, const Conflict *c, bgs_time now) {
  int bNeedsRemote = !c->bRemoteGone && (c->zRemote == NULL || c->zVersion == NULL);
  switch (c->eStrategy) {
    case STRAT_SERVER:
      return conflict_drop(pEng, c, "server-wins", now);
    case STRAT_CLIENT:
      if (c->bRemoteGone) return conflict_park(pEng, c, 0, "remote-deleted", NULL, NULL);
      if (c->zVersion == NULL) return conflict_park(pEng, c, 1, "needs-remote", NULL, NULL);
      if (c->nRound >= BGS__MAX_CONFLICT_ROUNDS) {
        return conflict_park(pEng, c, 0, "too-many-conflicts", NULL, NULL);
      }
      return conflict_resend(pEng, c, NULL, "client-wins", now);
    case STRAT_MERGE: {
      bgs__merge_rules rules;
      char *zMerged = NULL, *zFields = NULL;
      int rc;
      if (c->bRemoteGone) return conflict_park(pEng, c, 0, "remote-deleted", NULL, NULL);
      if (bNeedsRemote) return conflict_park(pEng, c, 1, "needs-remote", NULL, NULL);
      if (c->zBase == NULL) return conflict_park(pEng, c, 0, "no-base-document", NULL, NULL);
      if (c->zLocal == NULL) return conflict_park(pEng, c, 0, "local-not-a-document", NULL, NULL);
      rules.zRules = c->zConfig;
      rules.nLocalTime = c->nEdited;
      rules.nRemoteTime = bgs__remote_time(pEng, c->zConfig, c->zRemote);
      rc = bgs__merge3(pEng, c->zBase, c->zLocal, c->zRemote, &rules, &zMerged, &zFields);
      if (rc == BGS_OK) {
        if (strcmp(zFields, "[]") != 0) {
          rc = conflict_park(pEng, c, 0, "unresolvable", zFields, zMerged);
        } else if (c->nRound >= BGS__MAX_CONFLICT_ROUNDS) {
          rc = conflict_park(pEng, c, 0, "too-many-conflicts", zFields, zMerged);
        } else {
          rc = conflict_resend(pEng, c, zMerged, "merged", now);
        }
      }
      free(zMerged);
      free(zFields);
      return rc;
    }
    default: /* manual, custom: the app (or the glue's resolver) decides */
      return conflict_park(pEng, c, bNeedsRemote, c->eStrategy == STRAT_CUSTOM ? "custom" : "manual",
                           NULL, NULL);
  }
}

/* The conflict and its item as JSON (the shape of bgs_conflicts' entries). */
#define CONFLICT_JSON_SQL                                                               \
  "json_object('id', c.id, 'itemId', c.item_id, 'queue', i.queue, 'entity', i.entity,"  \
  " 'method', i.method, 'url', i.url, 'status', c.status, 'strategy', c.strategy,"      \
  " 'state', CASE c.state WHEN 0 THEN 'open' ELSE 'resolved' END,"                      \
  " 'needsRemote', json(CASE WHEN c.needs_remote THEN 'true' ELSE 'false' END),"       \
  " 'custom', json(CASE WHEN c.strategy = 'custom' THEN 'true' ELSE 'false' END),"     \
  " 'remoteDeleted', json(CASE WHEN c.remote_gone THEN 'true' ELSE 'false' END),"      \
  " 'base', json(c.base), 'local', json(c.local), 'remote', json(c.remote),"            \
  " 'baseVersion', c.base_version, 'remoteVersion', c.remote_version,"                  \
  " 'fields', json(c.fields), 'merged', json(c.merged), 'resolution', c.resolution,"    \
  " 'reason', c.reason, 'itemState', CASE i.state WHEN 0 THEN 'pending'"                \
  "  WHEN 1 THEN 'waiting' WHEN 2 THEN 'inflight' WHEN 3 THEN 'done'"                   \
  "  WHEN 4 THEN 'conflict' WHEN 5 THEN 'dead' ELSE 'auth' END,"                        \
  " 'createdAt', c.created_at, 'resolvedAt', c.resolved_at)"

static int conflict_json(bgs_engine *pEng, int64_t id, char **pzOut) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT " CONFLICT_JSON_SQL
                                        " FROM conflicts AS c JOIN items AS i ON i.id = c.item_id"
                                        " WHERE c.id = ?1");
  int rc;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
  sqlite3_reset(pStmt);
  return rc;
}

/* Forgets a recorded detail that did not end the call (bgs_errmsg stays meaningful). */
static void err_clear(bgs_engine *pEng) {
  free(pEng->zErr);
  pEng->zErr = NULL;
}

/* The local document: the body when it is a JSON object; for a PATCH, the body (a JSON
   merge patch, RFC 7396) applied to the base document. NULL when there is none. */
static int local_document(bgs_engine *pEng, int64_t iItem, const char *zBase, char **pzLocal) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT method, CAST(body AS TEXT) FROM items WHERE id = ?1");
  char *zBody = NULL;
  int bPatch, rc = BGS_OK;
  *pzLocal = NULL;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, iItem);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  bPatch = strcmp((const char *)sqlite3_column_text(pStmt, 0), "PATCH") == 0;
  if (sqlite3_column_type(pStmt, 1) != SQLITE_NULL) {
    zBody = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
  }
  sqlite3_reset(pStmt);
  if (zBody == NULL || bgs__doc_check(pEng, zBody, strlen(zBody), "local") != BGS_OK) {
    err_clear(pEng);
    free(zBody);
    return BGS_OK; /* not a document: merge is impossible, other strategies still work */
  }
  if (bPatch && zBase != NULL) {
    pStmt = bgs__stmt(pEng, "SELECT json_patch(?1, ?2)");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zBase, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zBody, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) != SQLITE_ROW) rc = bgs__sqlerr(pEng);
      else rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzLocal);
      sqlite3_reset(pStmt);
    }
    free(zBody);
    return rc;
  }
  *pzLocal = zBody;
  return BGS_OK;
}

/* Adds the conflict's outcome to the decision JSON of bgs_outcome. */
static int outcome_merge_json(bgs_engine *pEng, int64_t iConflict, char **pzOut) {
  char *zConflict = NULL;
  sqlite3_stmt *pStmt;
  int rc = conflict_json(pEng, iConflict, &zConflict);
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "SELECT json_set(?1, '$.state', json_extract(?2, '$.itemState'),"
                    " '$.reason', coalesce(json_extract(?2, '$.resolution'), 'conflict'),"
                    " '$.conflict', json_object('id', json_extract(?2, '$.id'),"
                    "  'strategy', json_extract(?2, '$.strategy'),"
                    "  'state', json_extract(?2, '$.state'),"
                    "  'needsRemote', json(?2 -> '$.needsRemote'),"
                    "  'custom', json(?2 -> '$.custom'),"
                    "  'resolution', json_extract(?2, '$.resolution'),"
                    "  'reason', json_extract(?2, '$.reason'),"
                    "  'fields', json(?2 -> '$.fields')))");
  if (pStmt == NULL) rc = BGS_ERROR;
  else {
    sqlite3_bind_text(pStmt, 1, *pzOut, -1, SQLITE_STATIC);
    sqlite3_bind_text(pStmt, 2, zConflict, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_ROW) rc = bgs__sqlerr(pEng);
    else {
      char *zNew = NULL;
      rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), &zNew);
      if (rc == BGS_OK) {
        free(*pzOut);
        *pzOut = zNew;
      }
    }
    sqlite3_reset(pStmt);
  }
  free(zConflict);
  return rc;
}

int bgs__conflict_arise(bgs_engine *pEng, int64_t iItem, int iStatus, const char *zOutcome,
                        const void *pBody, size_t nBody, bgs_time now, char **pzOut) {
  sqlite3_stmt *pStmt;
  Conflict c;
  char *zStrategy = NULL, *zConfig = NULL, *zBase = NULL, *zBaseVersion = NULL;
  char *zLocal = NULL, *zRemote = NULL, *zVersion = NULL, *zReason = NULL;
  int64_t iConflict = 0;
  int bOpen, rc = BGS_OK;

  /* The effective configuration: defaults, then the queue's, then the item's. */
  pStmt = bgs__stmt(
      pEng,
      "SELECT json_patch(json_patch('{\"strategy\":\"manual\"}',"
      "  coalesce(q.extra -> '$.conflict', '{}')), coalesce(i.extra -> '$.conflict', '{}')),"
      " i.extra -> '$.baseDocument', json_extract(i.extra, '$.baseVersion'),"
      " (SELECT value FROM json_each(?2, '$.headers') WHERE lower(key) = 'etag'"
      "   AND type = 'text' AND value <> '')"
      " FROM items AS i LEFT JOIN queues AS q ON q.name = i.queue WHERE i.id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, iItem);
  sqlite3_bind_text(pStmt, 2, zOutcome, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zConfig = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
  zBase = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
  zBaseVersion = bgs__strdup((const char *)sqlite3_column_text(pStmt, 2));
  zVersion = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
  sqlite3_reset(pStmt);
  if (zConfig == NULL) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");

  if (rc == BGS_OK) {
    pStmt = bgs__stmt(pEng, "SELECT json_extract(?1, '$.strategy')");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zConfig, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) == SQLITE_ROW) {
        zStrategy = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
      }
      sqlite3_reset(pStmt);
      if (strategy_from_name(zStrategy) < 0) {
        free(zStrategy);
        zStrategy = bgs__strdup("manual");
      }
    }
  }
  /* The response body is the current document when it is usable; anything else (empty,
     not JSON, past the limits) means the glue must fetch it. */
  if (rc == BGS_OK && nBody > 0) {
    if (bgs__doc_check(pEng, (const char *)pBody, nBody, "remote") == BGS_OK) {
      zRemote = malloc(nBody + 1);
      if (zRemote == NULL) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
      else {
        memcpy(zRemote, pBody, nBody);
        zRemote[nBody] = 0;
      }
    } else {
      zReason = bgs__strdup(bgs_errmsg(pEng));
      err_clear(pEng); /* not a failure of this call: the reason goes into the record */
    }
  }
  if (rc == BGS_OK) rc = local_document(pEng, iItem, zBase, &zLocal);
  if (rc == BGS_OK) {
    pStmt = bgs__stmt(pEng,
                      "INSERT INTO conflicts(item_id, status, strategy, config, base, local, remote,"
                      " base_version, remote_version, reason, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_int64(pStmt, 1, iItem);
      sqlite3_bind_int(pStmt, 2, iStatus);
      sqlite3_bind_text(pStmt, 3, zStrategy, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 4, zConfig, -1, SQLITE_STATIC);
      if (zBase) sqlite3_bind_text(pStmt, 5, zBase, -1, SQLITE_STATIC);
      if (zLocal) sqlite3_bind_text(pStmt, 6, zLocal, -1, SQLITE_STATIC);
      if (zRemote) sqlite3_bind_text(pStmt, 7, zRemote, -1, SQLITE_STATIC);
      if (zBaseVersion) sqlite3_bind_text(pStmt, 8, zBaseVersion, -1, SQLITE_STATIC);
      if (zVersion) sqlite3_bind_text(pStmt, 9, zVersion, -1, SQLITE_STATIC);
      if (zReason) sqlite3_bind_text(pStmt, 10, zReason, -1, SQLITE_STATIC);
      sqlite3_bind_int64(pStmt, 11, now);
      pEng->eConflictsOpen = BGS__CONFLICTS_SOME;
      pEng->eConflictRows = BGS__CONFLICTS_SOME;
      if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
      iConflict = sqlite3_last_insert_rowid(pEng->db);
    }
  }
  if (rc == BGS_OK) rc = conflict_read(pEng, iConflict, &c, &bOpen);
  if (rc == BGS_OK) {
    rc = conflict_run(pEng, &c, now);
    conflict_free(&c);
  }
  if (rc == BGS_OK) rc = outcome_merge_json(pEng, iConflict, pzOut);
  free(zStrategy);
  free(zConfig);
  free(zBase);
  free(zBaseVersion);
  free(zLocal);
  free(zRemote);
  free(zVersion);
  free(zReason);
  return rc;
}

/* Whether the outcome JSON z may have an ETag header: it names "etag" in some case, or
   has an escape (a name written "\u0065tag" is one too). Without, the UPDATE below
   matches nothing, after opening the table and its indexes for writing (14,000
   instructions of a delivery of an item with an entity). */
static int outcome_may_have_etag(const char *z) {
  for (; *z; z++) {
    if (*z == '\\') return 1;
    if ((*z | 0x20) == 'e' && sqlite3_strnicmp(z + 1, "tag", 3) == 0) return 1;
  }
  return 0;
}

int bgs__conflict_delivered(bgs_engine *pEng, int64_t iItem, const char *zEntity,
                            const char *zOutcome) {
  /* Later items of the entity that were edited from the same version as this one now
     send the version this delivery produced, instead of conflicting with it. An item
     without an entity has no later items: the statement would match nothing; nor does
     it for an outcome without an ETag. */
  sqlite3_stmt *pStmt;
  if (zEntity != NULL && zOutcome != NULL && outcome_may_have_etag(zOutcome)) {
    pStmt = bgs__stmt(
        pEng,
        "WITH me AS (SELECT entity, json_extract(extra, '$.baseVersion') AS v FROM items"
        "   WHERE id = ?1),"
        " tag AS (SELECT value AS t FROM json_each(?2, '$.headers') WHERE lower(key) = 'etag'"
        "   AND type = 'text' AND value <> '' LIMIT 1)"
        " UPDATE items SET extra = json_set(extra, '$.baseVersion', (SELECT t FROM tag))"
        " WHERE entity = (SELECT entity FROM me) AND id > ?1"
        "  AND " BGS__UNFINISHED_SQL
        "  AND json_extract(extra, '$.baseVersion') = (SELECT v FROM me)"
        "  AND EXISTS (SELECT 1 FROM tag)");
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_int64(pStmt, 1, iItem);
    sqlite3_bind_text(pStmt, 2, zOutcome, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  }
  /* A late 2xx for an earlier attempt of an item parked in conflict: it got through.
     Mostly no record is open at all, and the engine remembers when it found none: the
     UPDATE opens the table and its indexes for writing before it finds nothing (2,400
     instructions of every delivery). */
  if (pEng->eConflictsOpen == BGS__CONFLICTS_NONE) return BGS_OK;
  if (pEng->eConflictsOpen == 0) {
    pStmt = bgs__stmt(pEng, "SELECT EXISTS (SELECT 1 FROM conflicts WHERE state = 0)");
    if (pStmt == NULL) return BGS_ERROR;
    if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
    pEng->eConflictsOpen = sqlite3_column_int(pStmt, 0) ? BGS__CONFLICTS_SOME : BGS__CONFLICTS_NONE;
    sqlite3_reset(pStmt);
    if (pEng->eConflictsOpen == BGS__CONFLICTS_NONE) return BGS_OK;
  }
  pStmt = bgs__stmt(pEng,
                    "UPDATE conflicts SET state = 1, needs_remote = 0, resolution = 'delivered',"
                    " resolved_at = (SELECT updated_at FROM items WHERE id = ?1)"
                    " WHERE item_id = ?1 AND state = 0");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, iItem);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

/* ---- public calls ---- */

static int finish(bgs_engine *pEng, int rc, char **pzOut) {
  rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
  if (rc != BGS_OK) {
    free(*pzOut);
    *pzOut = NULL;
  }
  return rc;
}

int bgs_conflict_remote(bgs_engine *pEng, int64_t id, const char *zDoc, const char *zVersion,
                        bgs_time now, char **pzOut) {
  Conflict c;
  sqlite3_stmt *pStmt;
  int bOpen = 0, rc;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  if (zDoc != NULL) {
    rc = bgs__doc_check(pEng, zDoc, strlen(zDoc), "remote document");
    if (rc != BGS_OK) return rc;
    if (zVersion == NULL || zVersion[0] == 0 || strlen(zVersion) > BGS__MAX_VERSION) {
      return bgs__err(pEng, BGS_INVALID_ARGUMENT, "a remote document needs its version (ETag)");
    }
  }
  rc = bgs__begin(pEng);
  if (rc != BGS_OK) return rc;
  rc = conflict_read(pEng, id, &c, &bOpen);
  if (rc == BGS_OK && !bOpen) {
    rc = bgs__err(pEng, BGS_INVALID_STATE, "conflict %lld is not open", (long long)id);
  }
  conflict_free(&c);
  if (rc == BGS_OK) {
    pStmt = bgs__stmt(pEng,
                      "UPDATE conflicts SET remote = ?2, remote_version = ?3,"
                      " remote_gone = ?2 IS NULL, needs_remote = 0 WHERE id = ?1");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_int64(pStmt, 1, id);
      if (zDoc) sqlite3_bind_text(pStmt, 2, zDoc, -1, SQLITE_STATIC);
      if (zDoc) sqlite3_bind_text(pStmt, 3, zVersion, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) != SQLITE_DONE) rc = bgs__sqlerr(pEng);
    }
  }
  if (rc == BGS_OK) rc = conflict_read(pEng, id, &c, &bOpen);
  if (rc == BGS_OK) {
    rc = conflict_run(pEng, &c, now);
    conflict_free(&c);
  }
  if (rc == BGS_OK) rc = conflict_json(pEng, id, pzOut);
  return finish(pEng, rc, pzOut);
}

int bgs_conflict_resolve(bgs_engine *pEng, int64_t id, const char *zJson, bgs_time now,
                         char **pzOut) {
  Conflict c;
  sqlite3_stmt *pStmt;
  char *zKeep = NULL, *zDoc = NULL, *zVersion = NULL;
  int bOpen = 0, rc;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  memset(&c, 0, sizeof(c));
  rc = bgs__json_object_check(pEng, zJson, "resolution");
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng,
                    "SELECT json_type(?1, '$.keep'), json_extract(?1, '$.keep'),"
                    " json_type(?1, '$.document'), ?1 -> '$.document',"
                    " json_type(?1, '$.version'), json_extract(?1, '$.version')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    zKeep = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
  }
  if (sqlite3_column_type(pStmt, 2) != SQLITE_NULL) {
    zDoc = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
  }
  if (sqlite3_column_type(pStmt, 4) != SQLITE_NULL) {
    if (strcmp((const char *)sqlite3_column_text(pStmt, 4), "text") != 0 ||
        sqlite3_column_bytes(pStmt, 5) < 1 || sqlite3_column_bytes(pStmt, 5) > BGS__MAX_VERSION) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "version must be a non-empty string");
    } else {
      zVersion = bgs__strdup((const char *)sqlite3_column_text(pStmt, 5));
    }
  }
  sqlite3_reset(pStmt);
  if (rc == BGS_OK && (zKeep == NULL) == (zDoc == NULL)) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "give either keep or document");
  }
  if (rc == BGS_OK && zKeep && strcmp(zKeep, "local") != 0 && strcmp(zKeep, "remote") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "keep must be \"local\" or \"remote\"");
  }
  if (rc == BGS_OK && zDoc) rc = bgs__doc_check(pEng, zDoc, strlen(zDoc), "document");
  if (rc == BGS_OK) rc = bgs__begin(pEng);
  if (rc != BGS_OK) goto out;
  rc = conflict_read(pEng, id, &c, &bOpen);
  if (rc == BGS_OK && !bOpen) {
    rc = bgs__err(pEng, BGS_INVALID_STATE, "conflict %lld is not open", (long long)id);
  }
  if (rc == BGS_OK && zVersion) {
    free(c.zVersion);
    c.zVersion = zVersion;
    zVersion = NULL;
    c.bRemoteGone = 0;
  }
  if (rc == BGS_OK) {
    if (zKeep && strcmp(zKeep, "remote") == 0) {
      rc = conflict_drop(pEng, &c, "keep-remote", now);
    } else if (c.zVersion == NULL && !c.bRemoteGone) {
      rc = bgs__err(pEng, BGS_INVALID_STATE,
                    "the remote version is unknown: hand in the remote (bgs_conflict_remote)"
                    " or give a version");
    } else {
      rc = conflict_resend(pEng, &c, zDoc, zKeep ? "keep-local" : "document", now);
    }
  }
  if (rc == BGS_OK) rc = conflict_json(pEng, id, pzOut);
  rc = finish(pEng, rc, pzOut);
out:
  conflict_free(&c);
  free(zKeep);
  free(zDoc);
  free(zVersion);
  return rc;
}

int bgs_conflicts(bgs_engine *pEng, const char *zJson, char **pzOut) {
  static const char zSql[] =
      "SELECT json_group_array(json(j)) FROM (SELECT * FROM (SELECT c.id AS cid, " CONFLICT_JSON_SQL
      " AS j FROM conflicts AS c JOIN items AS i ON i.id = c.item_id"
      " WHERE (?2 < 0 OR c.state = ?2)"
      "  AND (json_extract(?1, '$.queue') IS NULL OR i.queue = json_extract(?1, '$.queue'))"
      "  AND (json_extract(?1, '$.entity') IS NULL OR i.entity = json_extract(?1, '$.entity'))"
      "  AND (json_extract(?1, '$.itemId') IS NULL OR c.item_id = json_extract(?1, '$.itemId'))"
      " ORDER BY c.id DESC LIMIT ?3) ORDER BY cid)";
  sqlite3_stmt *pStmt;
  int eState = -1, rc = BGS_OK;
  int64_t nLimit = 1000;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, -1);
  if (zJson == NULL) zJson = "{}";
  rc = bgs__json_object_check(pEng, zJson, "conflicts filter");
  if (rc != BGS_OK) return rc;
  pStmt = bgs__stmt(pEng, "SELECT json_extract(?1, '$.state'), json_extract(?1, '$.limit'),"
                          " json_type(?1, '$.limit')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    const char *z = (const char *)sqlite3_column_text(pStmt, 0);
    if (strcmp(z, "open") == 0) eState = 0;
    else if (strcmp(z, "resolved") == 0) eState = 1;
    else if (strcmp(z, "all") != 0) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "state must be open, resolved or all");
    }
  }
  if (sqlite3_column_type(pStmt, 2) != SQLITE_NULL) {
    if (strcmp((const char *)sqlite3_column_text(pStmt, 2), "integer") != 0 ||
        sqlite3_column_int64(pStmt, 1) < 1) {
      rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "limit must be a positive integer");
    }
    nLimit = sqlite3_column_int64(pStmt, 1);
  }
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
