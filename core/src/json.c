/*
 * json.c -- checks on JSON arguments, and JSON strings for answers built in C. Parsing
 * is mostly SQLite's JSON functions, called from the statements that use the fields; the
 * hot calls first try the plain-object reader at the end of this file.
 */
#include <string.h>

#include "internal.h"

int bgs__json_object_check(bgs_engine *pEng, const char *zJson, const char *zWhat) {
  sqlite3_stmt *pStmt;
  int bObject;
  if (zJson == NULL) return bgs__err(pEng, BGS_INVALID_JSON, "%s: missing", zWhat);
  pStmt = bgs__stmt(pEng, "SELECT CASE WHEN json_valid(?1) THEN json_type(?1) = 'object' ELSE 0 END");
  if (pStmt == NULL) return BGS_ERROR;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) != SQLITE_ROW) return bgs__sqlerr(pEng);
  bObject = sqlite3_column_int(pStmt, 0);
  sqlite3_reset(pStmt);
  if (!bObject) return bgs__err(pEng, BGS_INVALID_JSON, "%s: not a JSON object", zWhat);
  return BGS_OK;
}

void bgs__json_append_int(sqlite3_str *pOut, int64_t v) {
  char aBuf[24];
  int i = (int)sizeof(aBuf);
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    aBuf[--i] = (char)('0' + u % 10);
    u /= 10;
  } while (u > 0);
  if (v < 0) aBuf[--i] = '-';
  sqlite3_str_append(pOut, aBuf + i, (int)sizeof(aBuf) - i);
}

void bgs__json_append_string(sqlite3_str *pOut, const char *z) {
  const unsigned char *p = (const unsigned char *)z;
  sqlite3_str_appendchar(pOut, 1, '"');
  while (*p) {
    /* A run that needs no escape goes in at once (UTF-8 passes as it is): the claim's
       answer is mostly such runs. */
    const unsigned char *pRun = p;
    while (*p && *p != '"' && *p != '\\' && *p >= 0x20) p++;
    if (p > pRun) sqlite3_str_append(pOut, (const char *)pRun, (int)(p - pRun));
    if (*p == '"' || *p == '\\') {
      sqlite3_str_appendchar(pOut, 1, '\\');
      sqlite3_str_appendchar(pOut, 1, (char)*p++);
    } else if (*p) {
      sqlite3_str_appendf(pOut, "\\u%04x", *p++);
    }
  }
  sqlite3_str_appendchar(pOut, 1, '"');
}

/* ---- plain objects, read in C ----
   The hot calls (enqueue, outcome) take small objects of a few fields. Asking SQLite's
   JSON functions for each field parsed the text many times and ran several statements
   per call (a third of an enqueue's time). What is read here is a subset on which both
   agree by construction: RFC 8259 text (what json_valid() accepts) with no backslash, so
   every string is its bytes as they stand and no escape rule can differ. Anything else
   makes the reader answer 0 and the caller takes its SQL path, unchanged. */

#define BGS__JSON_MAX_DEPTH 64 /* deeper documents take the SQL path (SQLite allows 1000) */

static const char *json_ws(const char *z) {
  while (*z == ' ' || *z == '\t' || *z == '\n' || *z == '\r') z++;
  return z;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads the value at z into *pVal; returns the byte after it, or NULL when the value is
   not plain (invalid, an escape, a control character, too deep). */
static const char *json_value(const char *z, int nDepth, bgs__json_value *pVal) {
  const char *zStart = z;
  if (nDepth > BGS__JSON_MAX_DEPTH) return NULL;
  switch (*z) {
    case '"': {
      const unsigned char *p = (const unsigned char *)z + 1;
      while (*p != '"') {
        if (*p < 0x20 || *p == '\\') return NULL; /* end of text, control char, escape */
        p++;
      }
      pVal->eType = BGS__JSON_TEXT;
      pVal->z = z + 1;
      pVal->n = (size_t)((const char *)p - (z + 1));
      return (const char *)p + 1;
    }
    case '{':
    case '[': {
      char cEnd = *z == '{' ? '}' : ']';
      int bFirst = 1;
      z = json_ws(z + 1);
      while (*z != cEnd) {
        bgs__json_value v;
        if (!bFirst) {
          if (*z != ',') return NULL;
          z = json_ws(z + 1);
        }
        bFirst = 0;
        if (cEnd == '}') {
          if (*z != '"') return NULL;
          z = json_value(z, nDepth + 1, &v);
          if (z == NULL) return NULL;
          z = json_ws(z);
          if (*z != ':') return NULL;
          z = json_ws(z + 1);
        }
        z = json_value(z, nDepth + 1, &v);
        if (z == NULL) return NULL;
        z = json_ws(z);
      }
      pVal->eType = cEnd == '}' ? BGS__JSON_OBJECT : BGS__JSON_ARRAY;
      pVal->z = zStart;
      pVal->n = (size_t)(z + 1 - zStart);
      return z + 1;
    }
    case 't':
    case 'f':
    case 'n': {
      static const char *const azWord[] = {"true", "false", "null"};
      static const int aeType[] = {BGS__JSON_TRUE, BGS__JSON_FALSE, BGS__JSON_NULL};
      int i = *z == 't' ? 0 : *z == 'f' ? 1 : 2;
      size_t n = strlen(azWord[i]);
      if (strncmp(z, azWord[i], n) != 0) return NULL;
      pVal->eType = aeType[i];
      pVal->z = z;
      pVal->n = n;
      return z + n;
    }
    default: {
      int eType = BGS__JSON_INTEGER;
      if (*z == '-') z++;
      if (*z == '0') {
        z++;
      } else if (is_digit(*z)) {
        while (is_digit(*z)) z++;
      } else {
        return NULL;
      }
      if (*z == '.') {
        z++;
        if (!is_digit(*z)) return NULL;
        while (is_digit(*z)) z++;
        eType = BGS__JSON_REAL;
      }
      if (*z == 'e' || *z == 'E') {
        z++;
        if (*z == '+' || *z == '-') z++;
        if (!is_digit(*z)) return NULL;
        while (is_digit(*z)) z++;
        eType = BGS__JSON_REAL;
      }
      pVal->eType = eType;
      pVal->z = zStart;
      pVal->n = (size_t)(z - zStart);
      return z;
    }
  }
}

/* Whether the key k is the NUL-terminated zName (most keys differ in their first byte). */
static int key_is(const bgs__json_value *k, const char *zName) {
  return zName[0] == (k->n ? k->z[0] : 0) && strncmp(zName, k->z, k->n) == 0 &&
         zName[k->n] == '\0';
}

int bgs__json_plain_object(const char *zJson, const char *const *azKey, int nKey,
                           bgs__json_value *aVal) {
  const char *z;
  int i;
  if (zJson == NULL) return 0;
  z = json_ws(zJson);
  if (*z != '{') return 0;
  for (i = 0; i < nKey; i++) aVal[i].eType = BGS__JSON_ABSENT;
  /* One pass: each member is checked as it is read (json_value reads it whole), instead
     of checking the object first and reading its members again. */
  z = json_ws(z + 1);
  while (*z != '}') {
    bgs__json_value key, v;
    if (*z != '"') return 0;
    z = json_value(z, 1, &key);
    if (z == NULL) return 0;
    z = json_ws(z);
    if (*z != ':') return 0;
    z = json_value(json_ws(z + 1), 1, &v);
    if (z == NULL) return 0;
    for (i = 0; i < nKey; i++) {
      if (key_is(&key, azKey[i])) {
        if (aVal[i].eType != BGS__JSON_ABSENT) return 0; /* a repeated field */
        aVal[i] = v;
      }
    }
    z = json_ws(z);
    if (*z == ',') {
      z = json_ws(z + 1);
      if (*z == '}') return 0; /* a trailing comma */
    } else if (*z != '}') {
      return 0;
    }
  }
  return *json_ws(z + 1) == '\0';
}

int bgs__json_member_next(const bgs__json_value *pObj, size_t *piPos, bgs__json_value *pKey,
                          bgs__json_value *pVal) {
  const char *z = pObj->z + (*piPos == 0 ? 1 : *piPos);
  z = json_ws(z);
  if (*z == ',') z = json_ws(z + 1);
  if (*z == '}') return 0;
  z = json_value(z, 0, pKey);
  z = json_ws(z);
  z = json_value(json_ws(z + 1), 0, pVal);
  *piPos = (size_t)(z - pObj->z);
  return 1;
}

int bgs__json_int(const bgs__json_value *pVal, int64_t *pi) {
  const char *z = pVal->z;
  size_t n = pVal->n;
  int64_t v = 0;
  int bNeg = 0;
  if (pVal->eType != BGS__JSON_INTEGER) return 0;
  if (*z == '-') {
    bNeg = 1;
    z++;
    n--;
  }
  if (n > 18) return 0; /* may not fit: the SQL path decides */
  while (n-- > 0) v = v * 10 + (*z++ - '0');
  *pi = bNeg ? -v : v;
  return 1;
}
