/*
 * merge.c -- three-way merge of JSON documents (base, local, remote), a pure function
 * over SQLite's JSON functions, and the limits every document must respect.
 *
 * The merge walks objects key by key (the union of the three key sets):
 *  - a key that only one side changed takes that side's value (an absent key is a
 *    delete, so a delete on one side wins over an unchanged other side);
 *  - a key that both sides changed in the same way takes that value;
 *  - a key that both sides changed differently is merged recursively when both values
 *    are objects and the base value is an object or absent; otherwise it is a conflict,
 *    decided by the rule for its path (prefer-local, prefer-remote, newer-wins) or
 *    reported as unresolvable, in which case the merged document keeps the remote value.
 * Arrays and scalars are atomic. "Changed" means "not equal as JSON": key order inside
 * objects does not matter, 1 and 1.0 differ (integer vs real).
 *
 * Paths are dotted key names from the root ("address.city"); a rule for a path also
 * covers everything below it unless a longer path has its own rule.
 *
 * Invariants (checked by tests/c/test_merge.c and tests/fuzz/fuzz_merge.c):
 *   merge(b, x, b) == x,   merge(b, b, y) == y,   merge(b, x, x) == x.
 *
 * Statements are cached by literal (bgs__stmt); a level copies all of its rows out
 * before recursing, because the recursion reuses the same cached statements.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Every value of an object member as JSON text (json_each gives SQL values). */
#define MERGE_VALUE_SQL(t)                                                              \
  "CASE " t ".type WHEN 'object' THEN " t ".value WHEN 'array' THEN " t ".value"     \
  " WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' WHEN 'null' THEN 'null'"        \
  " ELSE json_quote(" t ".value) END"

int bgs__doc_check(bgs_engine *pEng, const char *zDoc, size_t nDoc, const char *zWhat) {
  sqlite3_stmt *pStmt;
  size_t i;
  int nDepth = 0, nMax = 0, bString = 0, bObject;
  if (zDoc == NULL) return bgs__err(pEng, BGS_INVALID_DOCUMENT, "%s: missing", zWhat);
  if (nDoc > BGS_MAX_DOCUMENT_BYTES) {
    return bgs__err(pEng, BGS_INVALID_DOCUMENT, "%s: %lld bytes, more than the limit of %d",
                    zWhat, (long long)nDoc, BGS_MAX_DOCUMENT_BYTES);
  }
  /* Depth first, so that SQLite never parses a document nested past the limit. */
  for (i = 0; i < nDoc; i++) {
    char c = zDoc[i];
    if (bString) {
      if (c == '\\') i++;
      else if (c == '"') bString = 0;
    } else if (c == '"') {
      bString = 1;
    } else if (c == '{' || c == '[') {
      nDepth++;
      if (nDepth > nMax) nMax = nDepth;
    } else if (c == '}' || c == ']') {
      nDepth--;
    } else if (c == 0) {
      return bgs__err(pEng, BGS_INVALID_DOCUMENT, "%s: contains a NUL byte", zWhat);
    }
  }
  if (nMax > BGS_MAX_DOCUMENT_DEPTH) {
    return bgs__err(pEng, BGS_INVALID_DOCUMENT, "%s: nested %d deep, more than the limit of %d",
                    zWhat, nMax, BGS_MAX_DOCUMENT_DEPTH);
  }
  pStmt = bgs__stmt(pEng,
                    "SELECT CASE WHEN json_valid(?1) THEN 1 + (json_type(?1) = 'object') ELSE 0 END");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zDoc, (int)nDoc, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  bObject = sqlite3_column_int(pStmt, 0);
  sqlite3_reset(pStmt);
  if (bObject == 0) return bgs__err(pEng, BGS_INVALID_DOCUMENT, "%s: not JSON", zWhat);
  if (bObject == 1) return bgs__err(pEng, BGS_INVALID_DOCUMENT, "%s: not a JSON object", zWhat);
  return BGS_OK;
}

typedef struct Merge {
  bgs_engine *pEng;
  const bgs__merge_rules *pRules;
  sqlite3_str *pConflicts; /* JSON array body of unresolvable paths */
  int nConflict;
} Merge;

/* One member of the three objects at a level; NULL = absent on that side. */
typedef struct Member {
  char *zKey;
  char *zB, *zL, *zR;
} Member;

static void members_free(Member *a, int n) {
  int i;
  for (i = 0; i < n; i++) {
    free(a[i].zKey);
    free(a[i].zB);
    free(a[i].zL);
    free(a[i].zR);
  }
  free(a);
}

static char *col_dup(sqlite3_stmt *pStmt, int i) {
  if (sqlite3_column_type(pStmt, i) == SQLITE_NULL) return NULL;
  return bgs__strdup((const char *)sqlite3_column_text(pStmt, i));
}

/* The members of base/local/remote (objects as JSON text, base may be NULL), in the
   order of the remote document, then new local keys, then keys only the base had. */
static int members_read(Merge *m, const char *zB, const char *zL, const char *zR,
                        Member **paOut, int *pnOut) {
  sqlite3_stmt *pStmt = bgs__stmt(
      m->pEng,
      "WITH k(key, src, ord, v) AS ("
      "  SELECT e.key, 1, 2e9 + e.id, " MERGE_VALUE_SQL("e") " FROM json_each(?1) AS e"
      "  UNION ALL"
      "  SELECT e.key, 2, 1e9 + e.id, " MERGE_VALUE_SQL("e") " FROM json_each(?2) AS e"
      "  UNION ALL"
      "  SELECT e.key, 3, e.id, " MERGE_VALUE_SQL("e") " FROM json_each(?3) AS e)"
      " SELECT key, max(v) FILTER (WHERE src = 1), max(v) FILTER (WHERE src = 2),"
      "  max(v) FILTER (WHERE src = 3)"
      " FROM k GROUP BY key ORDER BY min(ord)");
  Member *a = NULL;
  int n = 0, nAlloc = 0, rc = BGS_OK, s;
  *paOut = NULL;
  *pnOut = 0;
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zB ? zB : "{}", -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zL, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 3, zR, -1, SQLITE_STATIC);
  while ((s = sqlite3_step(pStmt)) == SQLITE_ROW) {
    if (n == nAlloc) {
      Member *aNew;
      nAlloc = nAlloc ? nAlloc * 2 : 16;
      aNew = realloc(a, sizeof(*a) * (size_t)nAlloc);
      if (aNew == NULL) {
        rc = bgs__err(m->pEng, BGS_NOMEM, "out of memory");
        break;
      }
      a = aNew;
    }
    memset(&a[n], 0, sizeof(a[n]));
    a[n].zKey = col_dup(pStmt, 0);
    a[n].zB = col_dup(pStmt, 1);
    a[n].zL = col_dup(pStmt, 2);
    a[n].zR = col_dup(pStmt, 3);
    n++;
    if (a[n - 1].zKey == NULL) {
      rc = bgs__err(m->pEng, BGS_NOMEM, "out of memory");
      break;
    }
  }
  if (rc == BGS_OK && s != SQLITE_DONE) rc = bgs__sqlerr(m->pEng);
  sqlite3_reset(pStmt);
  if (rc != BGS_OK) {
    members_free(a, n);
    return rc;
  }
  *paOut = a;
  *pnOut = n;
  return BGS_OK;
}

/* A canonical text of a JSON value: its leaves and containers sorted by path, so that
   objects equal up to key order compare equal. Caller frees. */
static int canon(Merge *m, const char *zJson, char **pz) {
  sqlite3_stmt *pStmt = bgs__stmt(
      m->pEng,
      "SELECT group_concat(fullkey || char(1) || type || char(1) || coalesce(quote(atom), ''),"
      " char(2) ORDER BY fullkey) FROM json_tree(?1)");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(m->pEng);
  *pz = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
  sqlite3_reset(pStmt);
  return *pz ? BGS_OK : bgs__err(m->pEng, BGS_NOMEM, "out of memory");
}

/* *pbEq: are two member values (NULL = absent) equal as JSON? */
static int json_equal(Merge *m, const char *zA, const char *zB, int *pbEq) {
  char *zCa = NULL, *zCb = NULL;
  int rc;
  if (zA == NULL || zB == NULL) {
    *pbEq = zA == zB;
    return BGS_OK;
  }
  if (strcmp(zA, zB) == 0) {
    *pbEq = 1;
    return BGS_OK;
  }
  /* Different texts can only be equal when they are containers (key order). */
  if ((zA[0] != '{' && zA[0] != '[') || zA[0] != zB[0]) {
    *pbEq = 0;
    return BGS_OK;
  }
  rc = canon(m, zA, &zCa);
  if (rc == BGS_OK) rc = canon(m, zB, &zCb);
  if (rc == BGS_OK) *pbEq = strcmp(zCa, zCb) == 0;
  free(zCa);
  free(zCb);
  return rc;
}

/* The rule for a dotted path: the longest path prefix (at a '.' boundary) with a rule
   in fields, else default, else unresolvable. */
static int rule_for(Merge *m, const char *zPath) {
  sqlite3_stmt *pStmt;
  const char *zRules = m->pRules ? m->pRules->zRules : NULL;
  int eRule = BGS__RULE_UNRESOLVABLE;
  if (zRules == NULL) return eRule;
  pStmt = bgs__stmt(m->pEng,
                    "SELECT coalesce("
                    " (SELECT value FROM json_each(?1, '$.fields')"
                    "   WHERE key = ?2 OR (substr(?2, 1, length(key) + 1) = key || '.')"
                    "   ORDER BY length(key) DESC LIMIT 1),"
                    " json_extract(?1, '$.default'))");
  if (pStmt == NULL) return eRule;
  sqlite3_bind_text(pStmt, 1, zRules, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) == SQLITE_ROW) {
    eRule = bgs__rule_from_name((const char *)sqlite3_column_text(pStmt, 0));
    if (eRule < 0) eRule = BGS__RULE_UNRESOLVABLE;
  }
  sqlite3_reset(pStmt);
  return eRule;
}

static int merge_object(Merge *m, const char *zPath, const char *zB, const char *zL,
                        const char *zR, int nDepth, sqlite3_str *pOut);

/* Merges one member whose two sides both changed, differently. *pzOwned receives a
   merged value to free; *pzValue points to the chosen text (or NULL = absent). */
static int merge_both_changed(Merge *m, const char *zPath, const Member *p, int nDepth,
                              const char **pzValue, char **pzOwned) {
  int eRule;
  int bObjects = p->zL && p->zR && p->zL[0] == '{' && p->zR[0] == '{' &&
                 (p->zB == NULL || p->zB[0] == '{');
  if (bObjects && nDepth < BGS_MAX_DOCUMENT_DEPTH) {
    sqlite3_str *pSub = sqlite3_str_new(NULL);
    char *z;
    int rc = merge_object(m, zPath, p->zB, p->zL, p->zR, nDepth + 1, pSub);
    z = sqlite3_str_finish(pSub);
    if (rc == BGS_OK && z == NULL) rc = bgs__err(m->pEng, BGS_NOMEM, "out of memory");
    if (rc == BGS_OK) {
      *pzOwned = bgs__strdup(z);
      if (*pzOwned == NULL) rc = bgs__err(m->pEng, BGS_NOMEM, "out of memory");
      *pzValue = *pzOwned;
    }
    sqlite3_free(z);
    return rc;
  }
  eRule = rule_for(m, zPath);
  if (eRule == BGS__RULE_NEWER_WINS) {
    int64_t nL = m->pRules ? m->pRules->nLocalTime : -1;
    int64_t nR = m->pRules ? m->pRules->nRemoteTime : -1;
    if (nL < 0 || nR < 0) eRule = BGS__RULE_UNRESOLVABLE; /* no times: cannot tell */
    else eRule = nL > nR ? BGS__RULE_PREFER_LOCAL : BGS__RULE_PREFER_REMOTE; /* tie: server */
  }
  if (eRule == BGS__RULE_PREFER_LOCAL) {
    *pzValue = p->zL;
  } else {
    *pzValue = p->zR;
    if (eRule == BGS__RULE_UNRESOLVABLE) {
      if (m->nConflict++ > 0) sqlite3_str_appendchar(m->pConflicts, 1, ',');
      bgs__json_append_string(m->pConflicts, zPath);
    }
  }
  return BGS_OK;
}

static int merge_object(Merge *m, const char *zPath, const char *zB, const char *zL,
                        const char *zR, int nDepth, sqlite3_str *pOut) {
  Member *a;
  int n, i, nOut = 0, rc;
  rc = members_read(m, zB, zL, zR, &a, &n);
  if (rc != BGS_OK) return rc;
  sqlite3_str_appendchar(pOut, 1, '{');
  for (i = 0; i < n && rc == BGS_OK; i++) {
    const Member *p = &a[i];
    const char *zValue = NULL;
    char *zOwned = NULL;
    char *zChild;
    int bLocalSame, bRemoteSame, bSidesSame;
    zChild = zPath[0] ? sqlite3_mprintf("%s.%s", zPath, p->zKey) : sqlite3_mprintf("%s", p->zKey);
    if (zChild == NULL) {
      rc = bgs__err(m->pEng, BGS_NOMEM, "out of memory");
      break;
    }
    rc = json_equal(m, p->zB, p->zL, &bLocalSame);
    if (rc == BGS_OK) rc = json_equal(m, p->zB, p->zR, &bRemoteSame);
    if (rc == BGS_OK && bLocalSame) {
      zValue = p->zR;
    } else if (rc == BGS_OK && bRemoteSame) {
      zValue = p->zL;
    } else if (rc == BGS_OK) {
      rc = json_equal(m, p->zL, p->zR, &bSidesSame);
      if (rc == BGS_OK && bSidesSame) zValue = p->zL;
      else if (rc == BGS_OK) rc = merge_both_changed(m, zChild, p, nDepth, &zValue, &zOwned);
    }
    if (rc == BGS_OK && zValue != NULL) {
      if (nOut++ > 0) sqlite3_str_appendchar(pOut, 1, ',');
      bgs__json_append_string(pOut, p->zKey);
      sqlite3_str_appendchar(pOut, 1, ':');
      sqlite3_str_appendall(pOut, zValue);
    }
    free(zOwned);
    sqlite3_free(zChild);
  }
  sqlite3_str_appendchar(pOut, 1, '}');
  members_free(a, n);
  return rc;
}

int bgs__merge3(bgs_engine *pEng, const char *zBase, const char *zLocal, const char *zRemote,
                const bgs__merge_rules *pRules, char **pzMerged, char **pzConflicts) {
  Merge m;
  sqlite3_str *pOut;
  char *zOut, *zConf;
  int rc;
  *pzMerged = NULL;
  *pzConflicts = NULL;
  memset(&m, 0, sizeof(m));
  m.pEng = pEng;
  m.pRules = pRules;
  m.pConflicts = sqlite3_str_new(NULL);
  sqlite3_str_appendchar(m.pConflicts, 1, '[');
  pOut = sqlite3_str_new(NULL);
  rc = merge_object(&m, "", zBase, zLocal, zRemote, 1, pOut);
  sqlite3_str_appendchar(m.pConflicts, 1, ']');
  zOut = sqlite3_str_finish(pOut);
  zConf = sqlite3_str_finish(m.pConflicts);
  if (rc == BGS_OK && (zOut == NULL || zConf == NULL)) {
    rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
  }
  if (rc == BGS_OK) {
    /* Normalize through SQLite (minified, checked) so callers get one canonical text. */
    sqlite3_stmt *pStmt = bgs__stmt(pEng, "SELECT json(?1), json(?2)");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zOut, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zConf, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) != SQLITE_ROW) rc = bgs__sqlerr(pEng);
      else {
        *pzMerged = bgs__strdup((const char *)sqlite3_column_text(pStmt, 0));
        *pzConflicts = bgs__strdup((const char *)sqlite3_column_text(pStmt, 1));
        if (*pzMerged == NULL || *pzConflicts == NULL) rc = bgs__err(pEng, BGS_NOMEM, "out of memory");
      }
      sqlite3_reset(pStmt);
    }
  }
  sqlite3_free(zOut);
  sqlite3_free(zConf);
  if (rc != BGS_OK) {
    free(*pzMerged);
    free(*pzConflicts);
    *pzMerged = NULL;
    *pzConflicts = NULL;
  }
  return rc;
}

/* ---- rules ---- */

static const char *const azRule[] = {"prefer-local", "prefer-remote", "newer-wins",
                                     "unresolvable", NULL};

int bgs__rule_from_name(const char *zName) {
  int i;
  if (zName == NULL) return -1;
  for (i = 0; azRule[i] != NULL; i++) {
    if (strcmp(azRule[i], zName) == 0) return i;
  }
  return -1;
}

int bgs__rules_check(bgs_engine *pEng, const char *zRules) {
  sqlite3_stmt *pStmt;
  int rc = BGS_OK;
  if (zRules == NULL) return BGS_OK;
  pStmt = bgs__stmt(pEng,
                    "SELECT json_type(?1, '$.fields'), json_type(?1, '$.default'),"
                    " json_extract(?1, '$.default'),"
                    " (SELECT count(*) FROM json_each(?1, '$.fields') WHERE type <> 'text'"
                    "   OR value NOT IN ('prefer-local','prefer-remote','newer-wins','unresolvable')),"
                    " json_type(?1, '$.timeField')");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zRules, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL &&
      strcmp((const char *)sqlite3_column_text(pStmt, 0), "object") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "conflict.fields must be an object");
  } else if (sqlite3_column_int(pStmt, 3) > 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT,
                  "conflict.fields values must be prefer-local, prefer-remote, newer-wins or"
                  " unresolvable");
  } else if (sqlite3_column_type(pStmt, 1) != SQLITE_NULL &&
             (strcmp((const char *)sqlite3_column_text(pStmt, 1), "text") != 0 ||
              bgs__rule_from_name((const char *)sqlite3_column_text(pStmt, 2)) < 0)) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT,
                  "conflict.default must be prefer-local, prefer-remote, newer-wins or"
                  " unresolvable");
  } else if (sqlite3_column_type(pStmt, 4) != SQLITE_NULL &&
             strcmp((const char *)sqlite3_column_text(pStmt, 4), "text") != 0) {
    rc = bgs__err(pEng, BGS_INVALID_ARGUMENT, "conflict.timeField must be a string");
  }
  sqlite3_reset(pStmt);
  return rc;
}

/* The remote document's edit time, from the member named by rules.timeField
   (default "updatedAt"): milliseconds since the epoch, or an ISO-8601 date; -1 if none. */
int64_t bgs__remote_time(bgs_engine *pEng, const char *zRules, const char *zRemote) {
  sqlite3_stmt *pStmt = bgs__stmt(
      pEng,
      "SELECT value, type FROM json_each(?2)"
      " WHERE key = coalesce(json_extract(?1, '$.timeField'), 'updatedAt')");
  int64_t n = -1;
  if (pStmt == NULL) return -1;
  if (zRules) sqlite3_bind_text(pStmt, 1, zRules, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zRemote, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) == SQLITE_ROW) {
    const char *zType = (const char *)sqlite3_column_text(pStmt, 1);
    if (strcmp(zType, "integer") == 0 || strcmp(zType, "real") == 0) {
      n = sqlite3_column_int64(pStmt, 0);
    } else if (strcmp(zType, "text") == 0) {
      n = bgs__iso_time_parse((const char *)sqlite3_column_text(pStmt, 0));
    }
  }
  sqlite3_reset(pStmt);
  return n;
}

int bgs_merge3(bgs_engine *pEng, const char *zBase, const char *zLocal, const char *zRemote,
               const char *zRules, char **pzOut) {
  bgs__merge_rules rules;
  char *zMerged = NULL, *zConflicts = NULL;
  sqlite3_stmt *pStmt;
  int rc;
  if (pEng == NULL || pzOut == NULL) return BGS_MISUSE;
  *pzOut = NULL;
  bgs__enter(pEng, -1);
  rc = bgs__doc_check(pEng, zBase, zBase ? strlen(zBase) : 0, "base");
  if (rc == BGS_OK) rc = bgs__doc_check(pEng, zLocal, zLocal ? strlen(zLocal) : 0, "local");
  if (rc == BGS_OK) rc = bgs__doc_check(pEng, zRemote, zRemote ? strlen(zRemote) : 0, "remote");
  if (rc == BGS_OK && zRules != NULL) rc = bgs__json_object_check(pEng, zRules, "merge rules");
  if (rc == BGS_OK) rc = bgs__rules_check(pEng, zRules);
  if (rc != BGS_OK) return rc;
  memset(&rules, 0, sizeof(rules));
  rules.zRules = zRules;
  rules.nLocalTime = -1;
  if (zRules != NULL) {
    pStmt = bgs__stmt(pEng, "SELECT json_type(?1, '$.localTime'), json_extract(?1, '$.localTime')");
    if (pStmt == NULL) return BGS_ERROR;
    sqlite3_bind_text(pStmt, 1, zRules, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
    if (sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
      if (strcmp((const char *)sqlite3_column_text(pStmt, 0), "integer") != 0) {
        sqlite3_reset(pStmt);
        return bgs__err(pEng, BGS_INVALID_ARGUMENT, "localTime must be an integer (ms)");
      }
      rules.nLocalTime = sqlite3_column_int64(pStmt, 1);
    }
    sqlite3_reset(pStmt);
  }
  rules.nRemoteTime = bgs__remote_time(pEng, zRules, zRemote);
  rc = bgs__merge3(pEng, zBase, zLocal, zRemote, &rules, &zMerged, &zConflicts);
  if (rc == BGS_OK) {
    pStmt = bgs__stmt(pEng, "SELECT json_object('merged', json(?1), 'conflicts', json(?2))");
    if (pStmt == NULL) rc = BGS_ERROR;
    else {
      sqlite3_bind_text(pStmt, 1, zMerged, -1, SQLITE_STATIC);
      sqlite3_bind_text(pStmt, 2, zConflicts, -1, SQLITE_STATIC);
      if (sqlite3_step(pStmt) != SQLITE_ROW) rc = bgs__sqlerr(pEng);
      else rc = bgs__out_text(pEng, sqlite3_column_text(pStmt, 0), pzOut);
      sqlite3_reset(pStmt);
    }
  }
  free(zMerged);
  free(zConflicts);
  return rc;
}
