/*
 * outcome.c -- what an attempt's result means for its item.
 *
 *   2xx                                 -> done
 *   0 (network error, timeout), 408, 425, 429, 5xx -> waiting (backoff, Retry-After)
 *   409, 412                            -> conflict: its strategy decides (conflict.c)
 *   401                                 -> auth (waits for fresh credentials)
 *   other 4xx, 1xx, 3xx                 -> dead letter
 *   "refused": "<reason>"               -> dead letter with that reason: the glue did not
 *                                          send the request (e.g. its origin is no longer
 *                                          allowed)
 *
 * The attempt number is the lease's token: an outcome for another attempt than the one
 * in flight is stale and changes nothing -- except a 2xx, because then the request was
 * delivered whatever happened to the lease since, and sending it again would be waste.
 * Every accepted outcome is logged in attempts (bounded, oldest dropped first).
 *
 * Delivered items are history, not work: of each queue's done items the newest keepDone
 * are kept (bgs__done_prune), so the store -- loaded whole into memory at every start
 * of the service worker -- does not grow with every delivery. Dead letters, conflicts and
 * unfinished items are never pruned, nor a done item a conflict record still refers to
 * (the inbox lists it with its item, and a dropped local change keeps its body there).
 * Ids stay unique after pruning: meta.last_item_id (queue.c) outlives the rows.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A report (bgs__report, internal.h): the attempt it answers and what came back. */
typedef bgs__report Outcome;

typedef struct Item {
  int eState;
  int64_t nAttempts;
  int64_t createdAt;
  char *zQueue;
  char *zEntity;
} Item;

/* A reason the glue may give: short, and safe to show and to match on. */
static int is_token(const char *z) {
  size_t n = 0;
  if (z == NULL) return 0;
  for (; z[n] != '\0'; n++) {
    char c = z[n];
    if (n >= 40 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return 0;
  }
  return n > 0;
}

static int outcome_read(bgs_engine *pEng, const char *zJson, Outcome *o) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT json_type(?1,'$.id'), json_extract(?1,'$.id'),"
                                  " json_type(?1,'$.attempt'), json_extract(?1,'$.attempt'),"
                                  " json_type(?1,'$.status'), json_extract(?1,'$.status'),"
                                  " json_type(?1,'$.headers'),"
                                  " (SELECT value FROM json_each(?1,'$.headers')"
                                  "   WHERE lower(key) = 'retry-after' AND type = 'text'),"
                                  " json_type(?1,'$.refused'), json_extract(?1,'$.refused')");
  const char *zType;
  int rc = BGS_OK;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  zType = (const char *)sqlite3_column_text(pStmt, 0);
  if (zType == NULL || strcmp(zType, "integer") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "id must be an integer");
  }
  zType = (const char *)sqlite3_column_text(pStmt, 2);
  if (rc == BGS_OK && (zType == NULL || strcmp(zType, "integer") != 0)) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "attempt must be an integer");
  }
  zType = (const char *)sqlite3_column_text(pStmt, 4);
  if (rc == BGS_OK && (zType == NULL || strcmp(zType, "integer") != 0 ||
                       sqlite3_column_int64(pStmt, 5) < 0 || sqlite3_column_int64(pStmt, 5) > 999)) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "status must be an integer from 0 to 999");
  }
  zType = (const char *)sqlite3_column_text(pStmt, 6);
  if (rc == BGS_OK && zType != NULL && strcmp(zType, "object") != 0 && strcmp(zType, "null") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "headers must be an object");
  }
  zType = (const char *)sqlite3_column_text(pStmt, 8);
  if (rc == BGS_OK && zType != NULL &&
      (strcmp(zType, "text") != 0 || !is_token((const char *)sqlite3_column_text(pStmt, 9)))) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "refused must be a reason of 1 to 40 characters a-z, 0-9 and -");
  }
  if (rc == BGS_OK) {
    if (zType != NULL) o->zRefused = bgs__strdup((const char *)sqlite3_column_text(pStmt, 9));
    o->id = sqlite3_column_int64(pStmt, 1);
    o->nAttempt = sqlite3_column_int64(pStmt, 3);
    o->iStatus = sqlite3_column_int(pStmt, 5);
    if (sqlite3_column_type(pStmt, 7) != SQLITE_NULL) {
      o->zRetryAfter = bgs__strdup((const char *)sqlite3_column_text(pStmt, 7));
    }
  }
  sqlite3_reset(pStmt);
  return rc;
}

/* The report read in C from a plain object (json.c): 1 when o holds what outcome_read
   would give; 0 when outcome_read must read it (not plain, or not valid: it says why). */
static int outcome_read_plain(const char *zJson, Outcome *o) {
  static const char *const azKey[] = {"id", "attempt", "status", "headers", "refused"};
  bgs__json_value aV[5], k, v;
  int64_t iStatus;
  if (!bgs__json_plain_object(zJson, azKey, 5, aV)) return 0;
  if (!bgs__json_int(&aV[0], &o->id) || !bgs__json_int(&aV[1], &o->nAttempt) ||
      !bgs__json_int(&aV[2], &iStatus) || iStatus < 0 || iStatus > 999) {
    return 0;
  }
  if (aV[3].eType != BGS__JSON_ABSENT && aV[3].eType != BGS__JSON_NULL &&
      aV[3].eType != BGS__JSON_OBJECT) {
    return 0;
  }
  if (aV[4].eType != BGS__JSON_ABSENT) {
    char zReason[48];
    if (aV[4].eType != BGS__JSON_TEXT || aV[4].n >= sizeof(zReason)) return 0;
    memcpy(zReason, aV[4].z, aV[4].n);
    zReason[aV[4].n] = 0;
    if (!is_token(zReason)) return 0;
    o->zRefused = bgs__strdup(zReason);
    if (o->zRefused == NULL) return 0;
  }
  o->iStatus = (int)iStatus;
  if (aV[3].eType == BGS__JSON_OBJECT) {
    size_t iPos = 0;
    /* The first text value named retry-after in any case, as json_each() finds it. */
    while (bgs__json_member_next(&aV[3], &iPos, &k, &v)) {
      static const char zName[] = "retry-after";
      size_t i;
      if (v.eType != BGS__JSON_TEXT || k.n != sizeof(zName) - 1) continue;
      for (i = 0; i < k.n; i++) {
        char c = k.z[i];
        if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != zName[i]) break;
      }
      if (i < k.n) continue;
      o->zRetryAfter = malloc(v.n + 1);
      if (o->zRetryAfter == NULL) {
        free(o->zRefused);
        o->zRefused = NULL;
        return 0;
      }
      memcpy(o->zRetryAfter, v.z, v.n);
      o->zRetryAfter[v.n] = 0;
      break;
    }
  }
  return 1;
}

static int item_read(bgs_engine *pEng, int64_t id, Item *p) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng,
                                  "SELECT state, attempts, created_at, queue, entity"
                                  " FROM items WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, id);
  if (sqlite3_step(pStmt) != SQLITE_ROW) {
    sqlite3_reset(pStmt);
    return bgs__err(pEng, BGS_NOT_FOUND, "no item %lld", (long long)id);
  }
  p->eState = sqlite3_column_int(pStmt, 0);
  p->nAttempts = sqlite3_column_int64(pStmt, 1);
  p->createdAt = sqlite3_column_int64(pStmt, 2);
  p->zQueue = bgs__strdup((const char *)sqlite3_column_text(pStmt, 3));
  p->zEntity = bgs__strdup((const char *)sqlite3_column_text(pStmt, 4));
  sqlite3_reset(pStmt);
  return p->zQueue ? BGS_OK : bgs__err(pEng, BGS_NOMEM, "out of memory");
}

static int is_retryable(int s) {
  return s == 0 || s == 408 || s == 425 || s == 429 || (s >= 500 && s <= 599);
}

/* The state an outcome leads to, the delay for a retry and the reason for the record. */
static int decide(bgs_engine *pEng, const Outcome *o, const Item *pItem, bgs_time now,
                  int *peState, int64_t *pnDelay, const char **pzReason) {
  bgs__queue q;
  int rc;
  int s = o->iStatus;
  if (o->bRetry && s != 401) s = 0; /* a batch that failed as a whole: each item retries */
  *pnDelay = 0;
  *pzReason = NULL;
  if (o->zRefused != NULL) {
    /* Never sent: the status is what the glue logs, the reason is why it was not sent. */
    *peState = BGS__ST_DEAD;
    *pzReason = o->zRefused;
    return BGS_OK;
  }
  if (s >= 200 && s <= 299) {
    *peState = BGS__ST_DONE;
    return BGS_OK;
  }
  if (s == 409 || s == 412) {
    *peState = BGS__ST_CONFLICT;
    *pzReason = "conflict";
    return BGS_OK;
  }
  if (s == 401) {
    *peState = BGS__ST_AUTH;
    *pzReason = "auth-required";
    return BGS_OK;
  }
  if (!is_retryable(s)) {
    *peState = BGS__ST_DEAD;
    *pzReason = s >= 400 ? "rejected" : "unexpected-status";
    return BGS_OK;
  }
  rc = bgs__queue_load(pEng, pItem->zQueue, &q);
  if (rc != BGS_OK) return rc;
  if (q.nMaxAttempts > 0 && pItem->nAttempts >= q.nMaxAttempts) {
    *peState = BGS__ST_DEAD;
    *pzReason = "max-attempts";
    return BGS_OK;
  }
  *pnDelay = bgs__backoff_delay(&q.backoff, (int)pItem->nAttempts, pEng->cfg.uSeed, o->id);
  if (o->zRetryAfter != NULL) {
    bgs_time at = bgs__retry_after_parse(o->zRetryAfter, now);
    /* Honoured up to the queue's longest delay: a server cannot park an item forever. */
    if (at > now) {
      int64_t nWant = at - now;
      if (nWant > q.backoff.nMaxMs) nWant = q.backoff.nMaxMs;
      if (nWant > *pnDelay) *pnDelay = nWant;
    }
  }
  if (q.nMaxAgeMs > 0 && now + *pnDelay > pItem->createdAt + q.nMaxAgeMs) {
    *peState = BGS__ST_DEAD;
    *pzReason = "expired";
    *pnDelay = 0;
    return BGS_OK;
  }
  *peState = BGS__ST_WAITING;
  *pzReason = o->zReason ? o->zReason : "retry";
  return BGS_OK;
}

/* The decision, as json_object('id', 'state', 'delayMs', 'dueAt', 'reason') wrote it
   (dueAt only for a retry, reason null when there is none), built without a statement. */
static int decision_json(bgs_engine *pEng, int64_t id, int eState, int64_t nDelay, bgs_time now,
                         const char *zReason, char **pzOut) {
  sqlite3_str *pOut = bgs__str_new(NULL, 128);
  char *z;
  int rc;
  sqlite3_str_appendall(pOut, "{\"id\":");
  bgs__json_append_int(pOut, id);
  sqlite3_str_appendall(pOut, ",\"state\":");
  bgs__json_append_string(pOut, bgs__state_name(eState));
  sqlite3_str_appendall(pOut, ",\"delayMs\":");
  bgs__json_append_int(pOut, nDelay);
  sqlite3_str_appendall(pOut, ",\"dueAt\":");
  if (eState == BGS__ST_WAITING) bgs__json_append_int(pOut, now + nDelay);
  else sqlite3_str_append(pOut, "null", 4);
  sqlite3_str_append(pOut, ",\"reason\":", 10);
  if (zReason) bgs__json_append_string(pOut, zReason);
  else sqlite3_str_append(pOut, "null", 4);
  sqlite3_str_appendchar(pOut, 1, '}');
  z = sqlite3_str_finish(pOut);
  if (z == NULL) return bgs__err(pEng, BGS_NOMEM, "out of memory");
  rc = bgs__out_text(pEng, (const unsigned char *)z, pzOut);
  sqlite3_free(z);
  return rc;
}

static int apply(bgs_engine *pEng, const Outcome *o, const Item *pItem, int eState,
                 int64_t nDelay, const char *zReason, bgs_time now, char **pzOut) {
  sqlite3_stmt *pStmt;
  int rc;
  /* A delivered item's body is no longer needed; dead letters keep theirs for a retry. */
  pStmt = bgs__stmt(pEng,
                    "UPDATE items SET state = ?2, due_at = ?3, lease_until = NULL,"
                    " last_status = ?4, reason = ?5, updated_at = ?6,"
                    " body = CASE WHEN ?2 = 3 THEN NULL ELSE body END"
                    " WHERE id = ?1");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, o->id);
  sqlite3_bind_int(pStmt, 2, eState);
  sqlite3_bind_int64(pStmt, 3, now + nDelay);
  sqlite3_bind_int(pStmt, 4, o->iStatus);
  if (zReason) sqlite3_bind_text(pStmt, 5, zReason, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 6, now);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);

  if (eState == BGS__ST_DONE || eState == BGS__ST_DEAD) {
    rc = bgs__entity_advance(pEng, pItem->zEntity);
    if (rc != BGS_OK) return rc;
  }

  pStmt = bgs__stmt(pEng,
                    "INSERT INTO attempts(item_id, attempt, at, status, decision, delay_ms)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_int64(pStmt, 1, o->id);
  sqlite3_bind_int64(pStmt, 2, o->nAttempt);
  sqlite3_bind_int64(pStmt, 3, now);
  sqlite3_bind_int(pStmt, 4, o->iStatus);
  sqlite3_bind_text(pStmt, 5, bgs__state_name(eState), -1, SQLITE_STATIC);
  if (eState == BGS__ST_WAITING) sqlite3_bind_int64(pStmt, 6, nDelay);
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  /* The log's oldest entries go BGS__ATTEMPT_TRIM at a time: deleting one at every
     outcome rewrote the leaf at the log's old end besides the one at its new end (a page
     of each outcome's handover). bgs_attempts lists only the newest nMaxAttemptLog, so
     what is seen is the same; the table holds fewer than BGS__ATTEMPT_TRIM more. */
  if (sqlite3_last_insert_rowid(pEng->db) % BGS__ATTEMPT_TRIM == 0) {
    pStmt = bgs__stmt(pEng, "DELETE FROM attempts WHERE seq <= last_insert_rowid() - ?1");
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_int64(pStmt, 1, pEng->cfg.nMaxAttemptLog);
    if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  }

  return decision_json(pEng, o->id, eState, nDelay, now, zReason, pzOut);
}

int bgs__outcome_apply(bgs_engine *pEng, const Outcome *o, const void *pBody, size_t nBody,
                       bgs_time now, char **pzOut) {
  Item item;
  int eState;
  int64_t nDelay;
  const char *zReason;
  int rc;
  int bSuccess = o->iStatus >= 200 && o->iStatus <= 299;
  memset(&item, 0, sizeof(item));
  rc = item_read(pEng, o->id, &item);
  if (rc == BGS_OK) {
    int bFinished = item.eState == BGS__ST_DONE || item.eState == BGS__ST_DEAD;
    int bCurrent = item.eState == BGS__ST_INFLIGHT && item.nAttempts == o->nAttempt;
    /* A late success must name an attempt that was handed out. */
    int bIssued = o->nAttempt >= 1 && o->nAttempt <= item.nAttempts;
    if (bFinished || (!bCurrent && !(bSuccess && bIssued))) {
      rc = bgs__err(pEng, BGS_STALE, "item %lld: attempt %lld is not in flight (state %s, attempt %lld)",
                    (long long)o->id, (long long)o->nAttempt, bgs__state_name(item.eState),
                    (long long)item.nAttempts);
    }
  }
  if (rc == BGS_OK) rc = decide(pEng, o, &item, now, &eState, &nDelay, &zReason);
  if (rc == BGS_OK) rc = apply(pEng, o, &item, eState, nDelay, zReason, now, pzOut);
  /* 409/412: the conflict's strategy decides what becomes of the item (conflict.c). */
  if (rc == BGS_OK && eState == BGS__ST_CONFLICT) {
    rc = bgs__conflict_arise(pEng, o->id, o->iStatus, o->zJson, pBody, nBody, now, pzOut);
  }
  if (rc == BGS_OK && eState == BGS__ST_DONE) {
    rc = bgs__conflict_delivered(pEng, o->id, item.zEntity, o->zJson);
  }
  /* A delivery only ends a lease; a retry's backoff (and a conflict's state) may end
     before what the engine knew of the next wake-up. */
  if (rc == BGS_OK && eState != BGS__ST_DONE) pEng->bWakeKnown = 0;
  /* Last: the prune may delete this very item (keepDone 0), and nothing above may miss it. */
  if (rc == BGS_OK && eState == BGS__ST_DONE) rc = bgs__done_prune(pEng, item.zQueue, o->id);
  free(item.zQueue);
  free(item.zEntity);
  return rc;
}

/* One id from BGS__DONE_ABOVE_SQL or BGS__DONE_BELOW_SQL; 0 when there is none. */
static int done_next(bgs_engine *pEng, const char *zSql, const char *zQueue, int64_t idFloor,
                     int64_t *pId) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, zSql);
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, idFloor);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  *pId = sqlite3_column_int64(pStmt, 0);
  sqlite3_reset(pStmt);
  return BGS_OK;
}

/* The prune's threshold (the (keepDone+1)-th newest done id) without walking keepDone
   index entries, from the floor the engine remembers (bgs_engine.idDoneFloor: exactly
   keepDone done items are at or above it). Only item iItem became done since: if it is
   above the floor it joins the newest keepDone and the floor itself is the threshold,
   the next done id above it the new floor (from the window when there is one, else one
   index seek); if below, the kept ones are unchanged and the threshold is the newest done
   id under the floor (iItem or one a conflict record kept).
   *pbFast is 0 when the floor is not known for this queue and keepDone. */
static int done_threshold_fast(bgs_engine *pEng, const char *zQueue, const bgs__queue *pQ,
                               int64_t iItem, int64_t *pidBelow, int *pbFast) {
  int64_t idFloor = pEng->idDoneFloor, idNext = 0;
  int rc;
  *pbFast = 0;
  if (!pEng->bDoneKnown || pEng->nDoneKeep != pQ->nKeepDone ||
      strcmp(pEng->zDoneQueue, zQueue) != 0 || iItem == idFloor) {
    return BGS_OK;
  }
  if (iItem > idFloor && pEng->bDoneWindow) {
    /* The floor goes and iItem joins the kept ids in order; the next floor is the
       smallest of them (the next done id above the floor: what the query would say). */
    int64_t *a = pEng->aDoneKept;
    int64_t i = pEng->nDoneKeep - 1;
    memmove(a, a + 1, (size_t)i * sizeof(*a));
    while (i > 0 && a[i - 1] > iItem) {
      a[i] = a[i - 1];
      i--;
    }
    a[i] = iItem;
    *pidBelow = idFloor;
    pEng->idDoneFloor = a[0];
  } else if (iItem > idFloor) {
    rc = done_next(pEng, BGS__DONE_ABOVE_SQL, zQueue, idFloor, &idNext);
    if (rc != BGS_OK) return rc;
    if (idNext <= idFloor) return BGS_OK; /* cannot be: iItem is above; take the long way */
    *pidBelow = idFloor;
    pEng->idDoneFloor = idNext;
  } else {
    rc = done_next(pEng, BGS__DONE_BELOW_SQL, zQueue, idFloor, &idNext);
    if (rc != BGS_OK) return rc;
    if (idNext <= 0) return BGS_OK; /* cannot be: iItem is below */
    *pidBelow = idNext;
  }
  *pbFast = 1;
  return BGS_OK;
}

/* Reads the nKeep done ids above idBelow into pEng->aDoneKept and sets bDoneWindow, unless
   there are not exactly nKeep (cannot be after the long way) or memory is short. */
static int done_window_read(bgs_engine *pEng, const char *zQueue, int64_t nKeep,
                            int64_t idBelow) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, BGS__DONE_KEPT_SQL);
  int64_t n = 0;
  int e;
  if (pStmt == NULL) return BGS_ERROR;
  if (pEng->nDoneKeptAlloc < nKeep) {
    int64_t *aNew = realloc(pEng->aDoneKept, (size_t)nKeep * sizeof(*aNew));
    if (aNew == NULL) return BGS_OK; /* no window: the query each time instead */
    pEng->aDoneKept = aNew;
    pEng->nDoneKeptAlloc = nKeep;
  }
  sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
  sqlite3_bind_int64(pStmt, 2, idBelow);
  sqlite3_bind_int64(pStmt, 3, nKeep);
  while ((e = sqlite3_step(pStmt)) == SQLITE_ROW && n < nKeep) {
    pEng->aDoneKept[n++] = sqlite3_column_int64(pStmt, 0);
  }
  sqlite3_reset(pStmt);
  if (e != SQLITE_ROW && e != SQLITE_DONE) return bgs__sqlerr(pEng);
  pEng->bDoneWindow = n == nKeep;
  return BGS_OK;
}

/* After the long way: the floor is the next done id above the threshold idBelow, which
   was the (keepDone+1)-th newest, so exactly keepDone are at or above it. With keepDone
   up to BGS__DONE_WINDOW_MAX all of them are remembered (the window): a delivery then
   finds the next floor among them instead of asking the index (a fifth of the prune). */
static int done_floor_remember(bgs_engine *pEng, const char *zQueue, const bgs__queue *pQ,
                               int64_t idBelow) {
  int64_t idFloor = 0;
  int rc;
  pEng->bDoneKnown = 0;
  pEng->bDoneWindow = 0;
  if (!pEng->bDoneTx || pQ->nKeepDone < 1 || strlen(zQueue) >= sizeof(pEng->zDoneQueue)) {
    return BGS_OK;
  }
  if (pQ->nKeepDone <= BGS__DONE_WINDOW_MAX) {
    rc = done_window_read(pEng, zQueue, pQ->nKeepDone, idBelow);
    if (rc != BGS_OK) return rc;
  }
  if (pEng->bDoneWindow) {
    idFloor = pEng->aDoneKept[0];
  } else {
    rc = done_next(pEng, BGS__DONE_ABOVE_SQL, zQueue, idBelow, &idFloor);
    if (rc != BGS_OK || idFloor <= idBelow) return rc;
  }
  strcpy(pEng->zDoneQueue, zQueue);
  pEng->nDoneKeep = pQ->nKeepDone;
  pEng->idDoneFloor = idFloor;
  pEng->bDoneKnown = 1;
  return BGS_OK;
}

/* *pbNone: the store holds no conflict record (remembered in eConflictRows). */
static int conflict_rows_none(bgs_engine *pEng, int *pbNone) {
  if (pEng->eConflictRows == 0) {
    sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT EXISTS (SELECT 1 FROM conflicts)");
    if (pStmt == NULL) return BGS_ERROR;
    if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
    pEng->eConflictRows = sqlite3_column_int(pStmt, 0) ? BGS__CONFLICTS_SOME : BGS__CONFLICTS_NONE;
    sqlite3_reset(pStmt);
  }
  *pbNone = pEng->eConflictRows == BGS__CONFLICTS_NONE;
  return BGS_OK;
}

int bgs__done_prune(bgs_engine *pEng, const char *zQueue, int64_t iItem) {
  bgs__queue q;
  sqlite3_stmt *pStmt;
  int64_t idBelow = 0;
  int bNewest = 0, bFast = 0, bNoConflicts = 0, rc = bgs__queue_load(pEng, zQueue, &q);
  if (rc != BGS_OK) return rc;
  rc = done_threshold_fast(pEng, zQueue, &q, iItem, &idBelow, &bFast);
  if (rc != BGS_OK) return rc;
  /* The fast threshold is below the floor or iItem, so never the store's newest item. */
  if (!bFast) {
    /* The long way costs keepDone steps of index items_done; no row means nothing to
       drop (and the floor stays unknown until there is). */
    pStmt = bgs__stmt(pEng, BGS__DONE_THRESHOLD_SQL);
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, q.nKeepDone);
    rc = sqlite3_step(pStmt);
    if (rc == SQLITE_DONE) {
      sqlite3_reset(pStmt);
      pEng->bDoneKnown = 0;
      return BGS_OK;
    }
    if (rc != SQLITE_ROW) return bgs__sqlerr(pEng);
    idBelow = sqlite3_column_int64(pStmt, 0);
    bNewest = sqlite3_column_int(pStmt, 1);
    sqlite3_reset(pStmt);
    rc = done_floor_remember(pEng, zQueue, &q, idBelow);
    if (rc != BGS_OK) return rc;
  }
  /* The newest item of the store goes only when keepDone is 0 (or every newer item is of
     another queue and gone): then, and only then, its id must be remembered. */
  if (bNewest) {
    rc = bgs__ids_remember(pEng);
    if (rc != BGS_OK) return rc;
  }
  if (bFast) rc = conflict_rows_none(pEng, &bNoConflicts);
  if (rc != BGS_OK) return rc;
  if (bNoConflicts) {
    /* The fast threshold is the one done item that goes: each delivery's prune took all
       it could, so the done items under the floor went before, and without conflict
       records none was kept back. By rowid: the range delete gathered its rows first and
       looked each up among the conflicts (4,000 instructions of every delivery). */
    pStmt = bgs__stmt(pEng, "DELETE FROM items WHERE id = ?1 AND state = 3");
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_int64(pStmt, 1, idBelow);
  } else {
    /* The delete touches only what goes (plus the few kept for conflict records). */
    pStmt = bgs__stmt(pEng, BGS__DONE_PRUNE_SQL);
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_text(pStmt, 1, zQueue, -1, SQLITE_STATIC);
    sqlite3_bind_int64(pStmt, 2, idBelow);
  }
  if (sqlite3_step(pStmt) != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

int bgs_outcome(bgs_engine *pEng, const char *zJson, const void *pBody, size_t nBody,
                bgs_time now, char **pzOut) {
  Outcome o;
  int rc = BGS_OK;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, now);
  memset(&o, 0, sizeof(o));
  if (!outcome_read_plain(zJson, &o)) {
    rc = bgs__json_object_check(pEng, zJson, "outcome");
    if (rc == BGS_OK) rc = outcome_read(pEng, zJson, &o);
  }
  o.zJson = zJson;
  if (rc == BGS_OK) rc = bgs__begin_keep(pEng);
  if (rc == BGS_OK) {
    rc = bgs__outcome_apply(pEng, &o, pBody, nBody, now, pzOut);
    rc = rc == BGS_OK ? bgs__commit(pEng) : bgs__rollback(pEng, rc);
    if (rc != BGS_OK) {
      free(*pzOut);
      *pzOut = NULL;
    }
  }
  free(o.zRetryAfter);
  free(o.zRefused);
  return rc;
}
