/*
 * engine_bench.c -- native throughput of the engine's decisions (not a test; target
 * bgs_engine_bench). Prints:
 *  - enqueue -> claim -> complete cycles per second with 1k and 100k items queued
 *    (the median of five runs; each cycle is three engine calls, three SQLite
 *    transactions; the hand-over is included: the changed chunks, with their checksums,
 *    are taken after every call as the glue takes them, in place (bgs_changes_view);
 *    storing them is the host's I/O);
 *  - second figure, labelled as such: the same cycles with the changes taken once per
 *    100 cycles, as a host that groups its flushes would take them (the engine's own
 *    work per call, with the hand-over amortized);
 *  - third figure: the first cycles (1k queued) with every item naming one of 100
 *    entities, so that per-entity order is kept on every call;
 *  - the latency of one claim against queue sizes of 1k, 10k and 100k items (it
 *    should stay flat: the claim reads an index range, not the queue);
 *  - SQLite's query plan for the claim, to show the indexes in use.
 * Time is injected (a counter); only the measurement reads clocks (CPU and wall).
 * Usage: bgs_engine_bench [cycles]   (default 20000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgsync.h"
#include "internal.h"

/* Seconds of CPU used by this process: on a shared machine the wall clock also counts
   the time other processes had the CPU. Both are printed. */
static double cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(bgs_engine *pEng, const char *zWhat, int rc) {
  fprintf(stderr, "%s: %s (%s)\n", zWhat, bgs_errname(rc), bgs_errmsg(pEng));
  exit(1);
}

/* The host's hand-over after a call, as the glue does it: the changed chunks, read in
   place (bgs_changes_view). Storing them is the host's I/O, not counted here. */
static void take(bgs_engine *pEng) {
  const bgs_chunk_view *aView;
  uint32_t nView;
  int64_t nSize;
  int rc = bgs_changes_view(pEng, &aView, &nView, &nSize);
  if (rc) die(pEng, "take", rc);
}

static const char zItem[] =
    "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/notes\","
    "\"headers\":{\"content-type\":\"application/json\"}}";
static const char zBody[] = "{\"title\":\"hello\",\"body\":\"a small note of about eighty bytes\"}";

static bgs_engine *open_engine(void) {
  bgs_image *pImg;
  bgs_engine *pEng;
  bgs_config cfg = {0};
  int rc;
  cfg.uSeed = 1;
  cfg.zInstallId = "bench";
  if (bgs_image_new(&pImg)) exit(1);
  rc = bgs_open(pImg, &cfg, 1, &pEng);
  if (rc) die(NULL, "open", rc);
  rc = bgs_queue_configure(pEng, "{\"name\":\"q\"}", 1);
  if (rc) die(pEng, "configure", rc);
  return pEng;
}

/* Items name one of this many entities, in turn (0: none): per-entity order then keeps
   all but each entity's oldest unfinished item from the claim. */
static int nEntities;
#define BENCH_ENTITIES 100 /* the third figure's */

static void enqueue(bgs_engine *pEng, bgs_time now) {
  static int iNext;
  char zEntityItem[sizeof(zItem) + 32];
  char *zOut = NULL;
  int rc;
  if (nEntities > 0) {
    snprintf(zEntityItem, sizeof(zEntityItem), "{\"entity\":\"note:%d\",%s",
             iNext++ % nEntities, zItem + 1);
  }
  rc = bgs_enqueue(pEng, nEntities > 0 ? zEntityItem : zItem, zBody, sizeof(zBody) - 1, now,
                   &zOut);
  if (rc) die(pEng, "enqueue", rc);
  bgs_free(zOut);
}

/* Fills the queue to n items in transactions of many enqueues each (fast set-up). */
static void fill(bgs_engine *pEng, int n, bgs_time now) {
  int i;
  for (i = 0; i < n; i++) {
    enqueue(pEng, now);
    if (i % 1000 == 999) take(pEng);
  }
  take(pEng);
}

/* Claims one item and returns its id and attempt. */
static void claim_one(bgs_engine *pEng, bgs_time now, int64_t *pId, int64_t *pAttempt) {
  char *zOut = NULL;
  const char *z;
  int rc = bgs_claim(pEng, "q", 1, now, &zOut);
  if (rc) die(pEng, "claim", rc);
  z = strstr(zOut, "\"id\":");
  if (z == NULL) die(pEng, "claim returned nothing", 0);
  *pId = strtoll(z + 5, NULL, 10);
  z = strstr(zOut, "\"attempt\":");
  *pAttempt = strtoll(z + 10, NULL, 10);
  bgs_free(zOut);
}

static void complete(bgs_engine *pEng, int64_t id, int64_t nAttempt, bgs_time now) {
  char zJson[128];
  char *zOut = NULL;
  int rc;
  snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":%lld,\"status\":200}", (long long)id,
           (long long)nAttempt);
  rc = bgs_outcome(pEng, zJson, NULL, 0, now, &zOut);
  if (rc) die(pEng, "outcome", rc);
  bgs_free(zOut);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define TRIALS 5 /* a shared machine's speed moves between runs: the median of five */

/* Cycles per CPU second, the median of TRIALS runs of nCycles on one engine (the queue
   stays at its size: each cycle adds one item and delivers one); *prBest is the best
   run, *prWall the median per wall second. The changes are taken after every call
   (nTakeEvery 0) or once every nTakeEvery cycles. */
static double cycles_per_second(int nQueued, int nCycles, int nTakeEvery, double *prBest,
                                double *prWall) {
  bgs_engine *pEng = open_engine();
  bgs_time now = 1000;
  double aCpu[TRIALS], aWall[TRIALS];
  int t, i;
  fill(pEng, nQueued, now);
  for (t = 0; t < TRIALS; t++) {
    double t0 = cpu(), w0 = wall();
    for (i = 0; i < nCycles; i++) {
      int64_t id, nAttempt;
      now++;
      enqueue(pEng, now);
      if (nTakeEvery == 0) take(pEng);
      claim_one(pEng, now, &id, &nAttempt);
      if (nTakeEvery == 0) take(pEng);
      complete(pEng, id, nAttempt, now);
      if (nTakeEvery == 0 || i % nTakeEvery == nTakeEvery - 1) take(pEng);
    }
    take(pEng);
    aCpu[t] = nCycles / (cpu() - t0);
    aWall[t] = nCycles / (wall() - w0);
  }
  bgs_close(pEng);
  qsort(aCpu, TRIALS, sizeof(double), cmp_double);
  qsort(aWall, TRIALS, sizeof(double), cmp_double);
  if (prBest) *prBest = aCpu[TRIALS - 1];
  if (prWall) *prWall = aWall[TRIALS / 2];
  return aCpu[TRIALS / 2];
}

/* Mean CPU microseconds of one claim with about nQueued items queued. */
static double claim_latency_us(int nQueued, int nClaims) {
  bgs_engine *pEng = open_engine();
  bgs_time now = 1000;
  double tClaim = 0;
  int i;
  fill(pEng, nQueued, now);
  for (i = 0; i < nClaims; i++) {
    int64_t id, nAttempt;
    double t0;
    now++;
    t0 = cpu();
    claim_one(pEng, now, &id, &nAttempt);
    tClaim += cpu() - t0;
    complete(pEng, id, nAttempt, now);
    enqueue(pEng, now); /* keep the queue at its size */
    take(pEng);
  }
  bgs_close(pEng);
  return tClaim / nClaims * 1e6;
}

static void print_plan(void) {
  static const char *const azSql[] = {
      "SELECT id, created_at FROM items WHERE queue = 'q' AND state = 0 AND head = 1"
      " ORDER BY priority, id LIMIT 1",
      "UPDATE items SET state = 0 WHERE state = 1 AND due_at <= 5",
      "UPDATE items SET state = 0 WHERE state = 2 AND lease_until <= 5",
      "SELECT id FROM items WHERE entity = 'e' AND " BGS__UNFINISHED_SQL
      " ORDER BY id LIMIT 1",
  };
  bgs_engine *pEng = open_engine();
  size_t i;
  fill(pEng, 1000, 1000);
  printf("query plans (claim path):\n");
  for (i = 0; i < sizeof(azSql) / sizeof(azSql[0]); i++) {
    sqlite3_stmt *pStmt = NULL;
    char *zSql = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", azSql[i]);
    if (sqlite3_prepare_v2(pEng->db, zSql, -1, &pStmt, NULL) != SQLITE_OK) {
      fprintf(stderr, "plan: %s\n", sqlite3_errmsg(pEng->db));
      exit(1);
    }
    printf("  %.60s...\n", azSql[i]);
    while (sqlite3_step(pStmt) == SQLITE_ROW) printf("    %s\n", sqlite3_column_text(pStmt, 3));
    sqlite3_finalize(pStmt);
    sqlite3_free(zSql);
  }
  bgs_close(pEng);
}

int main(int argc, char **argv) {
  int nCycles = argc > 1 ? atoi(argv[1]) : 20000;
  static const int aSize[] = {1000, 10000, 100000};
  double r1k, r100k, w1k, w100k, b1k, b100k, g1k, g100k, e1k;
  size_t i;
  if (nCycles < 100) nCycles = 100;
  print_plan();
  r1k = cycles_per_second(1000, nCycles, 0, &b1k, &w1k);
  r100k = cycles_per_second(100000, nCycles, 0, &b100k, &w100k);
  g1k = cycles_per_second(1000, nCycles, 100, NULL, NULL);
  g100k = cycles_per_second(100000, nCycles, 100, NULL, NULL);
  nEntities = BENCH_ENTITIES;
  e1k = cycles_per_second(1000, nCycles, 0, NULL, NULL);
  nEntities = 0;
  printf("native cycles/s (enqueue+claim+complete, changes taken after each call), median of %d"
         " runs of %d cycles per CPU second (best run; median per wall second):\n",
         TRIALS, nCycles);
  printf("  queued 1k:   %.0f (best %.0f; wall %.0f)\n", r1k, b1k, w1k);
  printf("  queued 100k: %.0f (best %.0f; wall %.0f)\n", r100k, b100k, w100k);
  printf("second figure, not the one above: the same cycles with the changes taken once per 100"
         " cycles (a host grouping its flushes), median per CPU second:\n");
  printf("  queued 1k:   %.0f\n", g1k);
  printf("  queued 100k: %.0f\n", g100k);
  printf("third figure: the first cycles with each item naming one of %d entities in turn"
         " (per-entity order kept), median per CPU second:\n",
         BENCH_ENTITIES);
  printf("  queued 1k:   %.0f\n", e1k);
  printf("native claim latency (one item, CPU time):\n");
  for (i = 0; i < sizeof(aSize) / sizeof(aSize[0]); i++) {
    printf("  queued %6d: %.1f us\n", aSize[i], claim_latency_us(aSize[i], nCycles / 4));
  }
  printf("JSON {\"cycles1k\":%.0f,\"cycles100k\":%.0f}\n", r1k, r100k);
  return 0;
}
