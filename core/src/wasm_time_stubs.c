/*
 * wasm_time_stubs.c -- the WebAssembly build's gmtime() and strftime(), which never answer.
 *
 * Built with SQLITE_OMIT_DATETIME_FUNCS (core/cmake/sqlite.cmake), SQLite keeps a small
 * current_date/current_time/current_timestamp that calls these two; they are its only
 * callers. Emscripten implements both in JavaScript, which put about 9 KB (2.5 KB gzip) of
 * time-zone code into the module's loader. The engine never asks SQL for the time (its
 * clock is an argument of every call), so here gmtime() reports failure, which makes
 * those SQL functions return NULL. Native builds use the C library's own.
 */
#include <stddef.h>
#include <time.h>

struct tm *gmtime(const time_t *pTime) {
  (void)pTime;
  return NULL;
}

size_t strftime(char *zOut, size_t nOut, const char *zFormat, const struct tm *pTm) {
  (void)zFormat;
  (void)pTm;
  if (nOut > 0) zOut[0] = 0;
  return 0;
}
