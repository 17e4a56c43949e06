/*
 * amalgamation.c -- compiles the pinned SQLite amalgamation (core/cmake/sqlite.cmake),
 * unedited, as one translation unit with the statements the engine never issues left out.
 *
 * SQLite's SQLITE_OMIT_ALTERTABLE, _ANALYZE, _ATTACH, _REINDEX, _TRIGGER, _VACUUM and _VIEW
 * remove
 * the code behind those statements, but the amalgamation's parser was generated with every
 * statement in its grammar, so its actions still call the functions that the options
 * removed (SQLite documents these options as needing the canonical sources). Those calls
 * land here instead: each one frees what the parser handed it and fails the statement
 * with a clear error, so nothing is left half done. The engine's SQL is fixed in core/src
 * and never uses these statements; tests/c/test_sqlite_build.c runs each one and checks
 * the error (and, under AddressSanitizer, that nothing leaks).
 *
 * Together about 16 KB of the gzipped module (tests/bench/README.md, "Size work").
 * The functions are static like the ones they stand in for: this file includes the
 * amalgamation, so they share its declarations and its translation unit.
 */
#ifdef SQLITE_OMIT_TRIGGER
/* With SQLITE_OMIT_TRIGGER the amalgamation also drops these declarations, which the
   parser's actions still need before the definitions below. SQLite's own typedefs name the
   same struct tags. */
struct Parse;
struct Token;
struct IdList;
struct SrcList;
struct Expr;
struct ExprList;
struct Select;
struct Upsert;
struct TriggerStep;
struct sqlite3;
void sqlite3BeginTrigger(struct Parse *, struct Token *, struct Token *, int, int,
                         struct IdList *, struct SrcList *, struct Expr *, int, int);
void sqlite3FinishTrigger(struct Parse *, struct TriggerStep *, struct Token *);
void sqlite3DropTrigger(struct Parse *, struct SrcList *, int);
void sqlite3DeleteTriggerStep(struct sqlite3 *, struct TriggerStep *);
struct TriggerStep *sqlite3TriggerSelectStep(struct sqlite3 *, struct Select *, const char *,
                                             const char *);
struct TriggerStep *sqlite3TriggerInsertStep(struct Parse *, struct SrcList *, struct IdList *,
                                             struct Select *, unsigned char, struct Upsert *,
                                             const char *, const char *);
struct TriggerStep *sqlite3TriggerUpdateStep(struct Parse *, struct SrcList *, struct SrcList *,
                                             struct ExprList *, struct Expr *, unsigned char,
                                             const char *, const char *);
struct TriggerStep *sqlite3TriggerDeleteStep(struct Parse *, struct SrcList *, struct Expr *,
                                             const char *, const char *);
#endif

#include "sqlite3.c"

#define BGS_NOT_IN_BUILD(pParse, zWhat) \
  sqlite3ErrorMsg((pParse), "%s is not supported by this build of SQLite", (zWhat))

#ifdef SQLITE_OMIT_ALTERTABLE
SQLITE_PRIVATE void sqlite3AlterRenameTable(Parse *pParse, SrcList *pSrc, Token *pName) {
  (void)pName;
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
SQLITE_PRIVATE void sqlite3AlterRenameColumn(Parse *pParse, SrcList *pSrc, Token *pOld,
                                             Token *pNew) {
  (void)pOld, (void)pNew;
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
SQLITE_PRIVATE void sqlite3AlterBeginAddColumn(Parse *pParse, SrcList *pSrc) {
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
/* Reached only after sqlite3AlterBeginAddColumn failed the statement. */
SQLITE_PRIVATE void sqlite3AlterFinishAddColumn(Parse *pParse, Token *pColDef) {
  (void)pParse, (void)pColDef;
}
SQLITE_PRIVATE void sqlite3AlterDropColumn(Parse *pParse, SrcList *pSrc, const Token *pName) {
  (void)pName;
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
SQLITE_PRIVATE void sqlite3AlterDropConstraint(Parse *pParse, SrcList *pSrc, Token *pCons,
                                               Token *pCol) {
  (void)pCons, (void)pCol;
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
SQLITE_PRIVATE void sqlite3AlterAddConstraint(Parse *pParse, SrcList *pSrc, Token *pFirst,
                                              Token *pName, const char *zExpr, int nExpr,
                                              Expr *pExpr) {
  (void)pFirst, (void)pName, (void)zExpr, (void)nExpr;
  sqlite3ExprDelete(pParse->db, pExpr);
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
SQLITE_PRIVATE void sqlite3AlterSetNotNull(Parse *pParse, SrcList *pSrc, Token *pCol,
                                           Token *pFirst) {
  (void)pCol, (void)pFirst;
  sqlite3SrcListDelete(pParse->db, pSrc);
  BGS_NOT_IN_BUILD(pParse, "ALTER TABLE");
}
/* Keeps track of names for ALTER TABLE RENAME only; nothing to track without it. */
SQLITE_PRIVATE void sqlite3RenameTokenRemap(Parse *pParse, const void *pTo, const void *pFrom) {
  (void)pParse, (void)pTo, (void)pFrom;
}
#endif

#ifdef SQLITE_OMIT_ANALYZE
SQLITE_PRIVATE void sqlite3Analyze(Parse *pParse, Token *pName1, Token *pName2) {
  (void)pName1, (void)pName2;
  BGS_NOT_IN_BUILD(pParse, "ANALYZE");
}
#endif

#ifdef SQLITE_OMIT_REINDEX
SQLITE_PRIVATE void sqlite3Reindex(Parse *pParse, Token *pName1, Token *pName2) {
  (void)pName1, (void)pName2;
  BGS_NOT_IN_BUILD(pParse, "REINDEX");
}
#endif

#ifdef SQLITE_OMIT_VACUUM
SQLITE_PRIVATE void sqlite3Vacuum(Parse *pParse, Token *pName, Expr *pInto) {
  (void)pName;
  sqlite3ExprDelete(pParse->db, pInto);
  BGS_NOT_IN_BUILD(pParse, "VACUUM");
}
/* Not parser glue: sqlite3_backup_step() and the btree still call it, and the option
   removes it with VACUUM. Drops the pager's cached pages (what SQLite's own does). */
SQLITE_PRIVATE void sqlite3PagerClearCache(Pager *pPager) {
  if (pPager->tempFile == 0) pager_reset(pPager);
}
#endif

#ifdef SQLITE_OMIT_VIEW
SQLITE_PRIVATE void sqlite3CreateView(Parse *pParse, Token *pBegin, Token *pName1,
                                      Token *pName2, ExprList *pCNames, Select *pSelect,
                                      int isTemp, int noErr) {
  (void)pBegin, (void)pName1, (void)pName2, (void)isTemp, (void)noErr;
  sqlite3SelectDelete(pParse->db, pSelect);
  sqlite3ExprListDelete(pParse->db, pCNames);
  BGS_NOT_IN_BUILD(pParse, "CREATE VIEW");
}
#endif

#ifdef SQLITE_OMIT_ATTACH
SQLITE_PRIVATE void sqlite3Attach(Parse *pParse, Expr *pFile, Expr *pName, Expr *pKey) {
  sqlite3ExprDelete(pParse->db, pFile);
  sqlite3ExprDelete(pParse->db, pName);
  sqlite3ExprDelete(pParse->db, pKey);
  BGS_NOT_IN_BUILD(pParse, "ATTACH");
}
SQLITE_PRIVATE void sqlite3Detach(Parse *pParse, Expr *pName) {
  sqlite3ExprDelete(pParse->db, pName);
  BGS_NOT_IN_BUILD(pParse, "DETACH");
}
/* Not parser glue: name lookup ("main.items", "temp.x") still needs it. */
SQLITE_PRIVATE int sqlite3DbIsNamed(sqlite3 *db, int iDb, const char *zName) {
  return sqlite3StrICmp(db->aDb[iDb].zDbSName, zName) == 0 ||
         (iDb == 0 && sqlite3StrICmp("main", zName) == 0);
}
#endif

#ifdef SQLITE_OMIT_TRIGGER
/* Without triggers SQLite also ignores RETURNING (it is built on them): the engine's SQL
   has none, and bgs__stmt (core/src/engine.c) refuses a statement that has one. */
void sqlite3BeginTrigger(Parse *pParse, Token *pName1, Token *pName2, int tr_tm, int op,
                         IdList *pColumns, SrcList *pTableName, Expr *pWhen, int isTemp,
                         int noErr) {
  (void)pName1, (void)pName2, (void)tr_tm, (void)op, (void)isTemp, (void)noErr;
  sqlite3IdListDelete(pParse->db, pColumns);
  sqlite3SrcListDelete(pParse->db, pTableName);
  sqlite3ExprDelete(pParse->db, pWhen);
  BGS_NOT_IN_BUILD(pParse, "CREATE TRIGGER");
}
/* The statement failed at sqlite3BeginTrigger, before any step was made: the rest only
   free what the parser hands them. */
void sqlite3FinishTrigger(Parse *pParse, TriggerStep *pStepList, Token *pAll) {
  (void)pParse, (void)pStepList, (void)pAll;
}
void sqlite3DropTrigger(Parse *pParse, SrcList *pName, int noErr) {
  (void)noErr;
  sqlite3SrcListDelete(pParse->db, pName);
  BGS_NOT_IN_BUILD(pParse, "DROP TRIGGER");
}
void sqlite3DeleteTriggerStep(sqlite3 *db, TriggerStep *pStep) {
  (void)db, (void)pStep;
}
TriggerStep *sqlite3TriggerSelectStep(sqlite3 *db, Select *pSelect, const char *zStart,
                                      const char *zEnd) {
  (void)zStart, (void)zEnd;
  sqlite3SelectDelete(db, pSelect);
  return 0;
}
TriggerStep *sqlite3TriggerInsertStep(Parse *pParse, SrcList *pTabList, IdList *pColumn,
                                      Select *pSelect, u8 orconf, Upsert *pUpsert,
                                      const char *zStart, const char *zEnd) {
  (void)orconf, (void)pUpsert, (void)zStart, (void)zEnd; /* no upserts in this build */
  sqlite3SrcListDelete(pParse->db, pTabList);
  sqlite3IdListDelete(pParse->db, pColumn);
  sqlite3SelectDelete(pParse->db, pSelect);
  return 0;
}
TriggerStep *sqlite3TriggerUpdateStep(Parse *pParse, SrcList *pTabList, SrcList *pFrom,
                                      ExprList *pEList, Expr *pWhere, u8 orconf,
                                      const char *zStart, const char *zEnd) {
  (void)orconf, (void)zStart, (void)zEnd;
  sqlite3SrcListDelete(pParse->db, pTabList);
  sqlite3SrcListDelete(pParse->db, pFrom);
  sqlite3ExprListDelete(pParse->db, pEList);
  sqlite3ExprDelete(pParse->db, pWhere);
  return 0;
}
TriggerStep *sqlite3TriggerDeleteStep(Parse *pParse, SrcList *pTabList, Expr *pWhere,
                                      const char *zStart, const char *zEnd) {
  (void)zStart, (void)zEnd;
  sqlite3SrcListDelete(pParse->db, pTabList);
  sqlite3ExprDelete(pParse->db, pWhere);
  return 0;
}
#endif
