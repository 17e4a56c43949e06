/*
 * engine.c -- the engine handle: open and close, the statement cache, transactions and
 * error details. Every public call that changes state runs in one SQLite transaction,
 * so a failed call leaves nothing behind and the host's flush after it sees whole
 * transactions only.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static unsigned g_nOpened = 0; /* makes each image's VFS name unique */

int bgs__err(bgs_engine *pEng, int rc, const char *zFmt, ...) {
  va_list ap;
  char *z;
  if (pEng == NULL) return rc;
  va_start(ap, zFmt);
  z = sqlite3_vmprintf(zFmt, ap);
  va_end(ap);
  free(pEng->zErr);
  pEng->zErr = bgs__strdup(z);
  sqlite3_free(z);
  return rc;
}

int bgs__sqlerr(bgs_engine *pEng) {
  int e = sqlite3_errcode(pEng->db) & 0xFF;
  int rc = BGS_ERROR;
  if (e == SQLITE_NOMEM) rc = BGS_NOMEM;
  if (e == SQLITE_CORRUPT || e == SQLITE_NOTADB) rc = BGS_CORRUPT;
  if (e == SQLITE_FULL || e == SQLITE_IOERR) rc = BGS_STORAGE;
  return bgs__err(pEng, rc, "sqlite: %s", sqlite3_errmsg(pEng->db));
}

void bgs__enter(bgs_engine *pEng, bgs_time now) {
  free(pEng->zErr);
  pEng->zErr = NULL;
  if (now >= 0) bgs__vfs_set_now(now);
}

char *bgs__strdup(const char *z) {
  size_t n;
  char *p;
  if (z == NULL) return NULL;
  n = strlen(z) + 1;
  p = malloc(n);
  if (p != NULL) memcpy(p, z, n);
  return p;
}

sqlite3_str *bgs__str_new(sqlite3 *db, int nReserve) {
  static const char aRoom[BGS__STR_RESERVE_MAX]; /* appended whole: appendchar loops */
  sqlite3_str *p = sqlite3_str_new(db);
  if (nReserve > BGS__STR_RESERVE_MAX) nReserve = BGS__STR_RESERVE_MAX;
  sqlite3_str_append(p, aRoom, nReserve);
  sqlite3_str_truncate(p, 0);
  return p;
}

int bgs__out_text(bgs_engine *pEng, const unsigned char *z, char **pzOut) {
  *pzOut = bgs__strdup(z ? (const char *)z : "null");
  return *pzOut ? BGS_OK : bgs__err(pEng, BGS_NOMEM, "out of memory");
}

/* Notes slot k as handed out (see stmt_reset_busy). */
static void stmt_handed(bgs_engine *pEng, unsigned k) {
  if (!pEng->abHanded[k]) {
    pEng->abHanded[k] = 1;
    pEng->aiHanded[pEng->nHanded++] = (unsigned short)k;
  }
}

sqlite3_stmt *bgs__stmt(bgs_engine *pEng, const char *zSql) {
  unsigned h = (unsigned)(((uintptr_t)zSql >> 3) % BGS__STMT_CACHE);
  unsigned i;
  /* Open addressing: probe from the hash slot until the key or an empty slot. */
  for (i = 0; i < BGS__STMT_CACHE; i++) {
    unsigned k = (h + i) % BGS__STMT_CACHE;
    if (pEng->azSqlKey[k] == zSql) {
      sqlite3_reset(pEng->apStmt[k]);
      sqlite3_clear_bindings(pEng->apStmt[k]);
      stmt_handed(pEng, k);
      return pEng->apStmt[k];
    }
    if (pEng->azSqlKey[k] == NULL) {
      sqlite3_stmt *pStmt = NULL;
      /* SQLite without triggers ignores RETURNING silently (core/cmake/sqlite.cmake):
         a statement that asks for it must fail here, in the first test that runs it. */
      if (strstr(zSql, "RETURNING") != NULL) {
        bgs__err(pEng, BGS_ERROR, "RETURNING is left out of this build of SQLite");
        return NULL;
      }
      if (sqlite3_prepare_v3(pEng->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &pStmt, NULL) !=
          SQLITE_OK) {
        bgs__sqlerr(pEng);
        return NULL;
      }
      pEng->azSqlKey[k] = zSql;
      pEng->apStmt[k] = pStmt;
      stmt_handed(pEng, k);
      return pStmt;
    }
  }
  bgs__err(pEng, BGS_ERROR, "statement cache full (raise BGS__STMT_CACHE)");
  return NULL;
}

int bgs__exec(bgs_engine *pEng, const char *zSql) {
  if (sqlite3_exec(pEng->db, zSql, NULL, NULL, NULL) != SQLITE_OK) return bgs__sqlerr(pEng);
  return BGS_OK;
}

/* Runs a cached statement without results (BEGIN, COMMIT): parsing them on every call
   was a tenth of an enqueue's time. */
static int stmt_run(bgs_engine *pEng, const char *zSql) {
  sqlite3_stmt *pStmt = bgs__stmt(pEng, zSql);
  int e;
  if (pStmt == NULL) return BGS_ERROR;
  e = sqlite3_step(pStmt);
  sqlite3_reset(pStmt);
  if (e != SQLITE_DONE) return bgs__sqlerr(pEng);
  return BGS_OK;
}

int bgs__begin(bgs_engine *pEng) {
  bgs__image_commit(pEng->pImg); /* nothing else commits; a no-op but for safety */
  pEng->bDoneKnown = 0;
  pEng->bWakeKnown = 0;
  pEng->bDoneTx = 0;
  return stmt_run(pEng, "BEGIN IMMEDIATE");
}

int bgs__begin_keep(bgs_engine *pEng) {
  bgs__image_commit(pEng->pImg);
  pEng->bDoneTx = 1;
  return stmt_run(pEng, "BEGIN IMMEDIATE");
}

/* A statement left mid-result (a single-row read) would block COMMIT; results
   are copied out before a transaction ends, so resetting them all here is safe. Only
   the statements handed out since the last time can be busy: looking at all 128 slots
   was 900 instructions a commit, more than the BEGIN. */
static void stmt_reset_busy(bgs_engine *pEng) {
  int i;
  for (i = 0; i < pEng->nHanded; i++) {
    unsigned k = pEng->aiHanded[i];
    pEng->abHanded[k] = 0;
    if (sqlite3_stmt_busy(pEng->apStmt[k])) sqlite3_reset(pEng->apStmt[k]);
  }
  pEng->nHanded = 0;
}

int bgs__commit(bgs_engine *pEng) {
  int rc;
  stmt_reset_busy(pEng);
  rc = stmt_run(pEng, "COMMIT");
  if (rc != BGS_OK) return bgs__rollback(pEng, rc);
  bgs__image_commit(pEng->pImg);
  return rc;
}

int bgs__rollback(bgs_engine *pEng, int rc) {
  pEng->bDoneKnown = 0; /* the prunes it made are undone */
  pEng->idNext = 0;     /* and so may be an insert */
  pEng->eConflictsOpen = 0; /* and a resolution */
  pEng->eConflictRows = 0;
  pEng->bWakeKnown = 0;
  stmt_reset_busy(pEng);
  if (!sqlite3_get_autocommit(pEng->db)) sqlite3_exec(pEng->db, "ROLLBACK", NULL, NULL, NULL);
  /* Without a journal SQLite undoes only its page cache (and drops it, to read the pages
     again): what it wrote to the image goes back here. */
  bgs__image_rollback(pEng->pImg);
  return rc;
}

static void engine_free(bgs_engine *pEng) {
  int i;
  for (i = 0; i < BGS__STMT_CACHE; i++) sqlite3_finalize(pEng->apStmt[i]);
  sqlite3_close(pEng->db);
  bgs__vfs_unregister(pEng->zName);
  bgs_image_free(pEng->pImg);
  free(pEng->zInstallId);
  free(pEng->zErr);
  free(pEng->pQueueKnown);
  free(pEng->aDoneKept);
  free(pEng);
}

int bgs_open(bgs_image *pImg, const bgs_config *pCfg, bgs_time now, bgs_engine **ppEng) {
  bgs_engine *pEng;
  char zUri[64];
  int rc;
  if (ppEng == NULL) {
    bgs_image_free(pImg);
    return BGS_MISUSE;
  }
  *ppEng = NULL;
  if (pImg == NULL) return BGS_MISUSE;
  pEng = calloc(1, sizeof(*pEng));
  if (pEng == NULL) {
    bgs_image_free(pImg);
    return BGS_NOMEM;
  }
  pEng->pImg = pImg;
  if (pCfg != NULL) pEng->cfg = *pCfg;
  pEng->cfg.zInstallId = NULL;
  if (pEng->cfg.nLeaseMs <= 0) pEng->cfg.nLeaseMs = 60000;
  if (pEng->cfg.nMaxAttemptLog <= 0) pEng->cfg.nMaxAttemptLog = 1000;
  /* SQLite's printf, not libc's: the module then carries no libc printf (8 KB of wasm). */
  sqlite3_snprintf((int)sizeof(pEng->zName), pEng->zName, "/bgs-image-%u", ++g_nOpened);
  rc = bgs__vfs_register(pEng->zName, pImg);
  if (rc != BGS_OK) {
    pEng->zName[0] = 0;
    engine_free(pEng);
    return rc;
  }
  bgs__vfs_set_now(now);
  sqlite3_snprintf((int)sizeof(zUri), zUri, "%s", pEng->zName);
  if (sqlite3_open_v2(zUri, &pEng->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "bgs-mirror") !=
      SQLITE_OK) {
    rc = pEng->db ? bgs__sqlerr(pEng) : BGS_NOMEM;
    engine_free(pEng);
    return rc;
  }
  /* Plans must not depend on bound values: SQLite otherwise peeks at a bound LIMIT or
     OFFSET to plan, and then parses the statement again at every new binding (two
     re-parses per claim/complete cycle, a fifth of its time). Every hot query is an
     index range whatever the values (schema.c). */
  sqlite3_db_config(pEng->db, SQLITE_DBCONFIG_ENABLE_QPSG, 1, (int *)NULL);
  /* No journal: the image keeps the pages as they were at the last commit and puts them
     back on a rollback (image.c, bgs__rollback); the host only ever stores committed
     states. */
  rc = bgs__exec(pEng,
                 "PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                 "PRAGMA temp_store=MEMORY; PRAGMA locking_mode=EXCLUSIVE;");
  if (rc == BGS_OK) rc = bgs__schema_ensure(pEng, now, pCfg ? pCfg->zInstallId : NULL);
  if (rc != BGS_OK) {
    engine_free(pEng);
    return rc;
  }
  *ppEng = pEng;
  return BGS_OK;
}

int bgs_close(bgs_engine *pEng) {
  if (pEng != NULL) engine_free(pEng);
  return BGS_OK;
}

const char *bgs_errmsg(bgs_engine *pEng) {
  if (pEng == NULL) return "no engine";
  return pEng->zErr ? pEng->zErr : "no error";
}

void bgs_free(void *p) { free(p); }

int bgs_changes_take(bgs_engine *pEng, unsigned char **ppBuf, size_t *pnBuf) {
  if (pEng == NULL || ppBuf == NULL || pnBuf == NULL) return BGS_MISUSE;
  *ppBuf = NULL;
  *pnBuf = 0;
  return bgs__image_take(pEng->pImg, ppBuf, pnBuf);
}

int bgs_changes_view(bgs_engine *pEng, const bgs_chunk_view **paView, uint32_t *pnView,
                     int64_t *pnSize) {
  if (pEng == NULL || paView == NULL || pnView == NULL || pnSize == NULL) return BGS_MISUSE;
  *pnSize = bgs__image_size(pEng->pImg);
  return bgs__image_view(pEng->pImg, paView, pnView);
}
