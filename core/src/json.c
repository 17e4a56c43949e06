/*
 * json.c -- checks on JSON arguments, and JSON strings for answers built in C. Parsing
 * itself is SQLite's JSON functions, called from the statements that use the fields.
 */
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

void bgs__json_append_string(sqlite3_str *pOut, const char *z) {
  const unsigned char *p = (const unsigned char *)z;
  sqlite3_str_appendchar(pOut, 1, '"');
  for (; *p; p++) {
    if (*p == '"' || *p == '\\') {
      sqlite3_str_appendchar(pOut, 1, '\\');
      sqlite3_str_appendchar(pOut, 1, (char)*p);
    } else if (*p < 0x20) {
      sqlite3_str_appendf(pOut, "\\u%04x", *p);
    } else {
      sqlite3_str_appendchar(pOut, 1, (char)*p); /* UTF-8 passes as it is */
    }
  }
  sqlite3_str_appendchar(pOut, 1, '"');
}
