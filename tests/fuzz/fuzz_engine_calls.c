/*
 * fuzz_engine_calls.c -- random sequences of engine calls (libFuzzer), with invariants
 * checked against a shadow model kept by this harness:
 *  - no crash, no sanitizer report, no unexpected result code;
 *  - no item lost: every item the model knows is listed exactly once, in a known state,
 *    and nothing else is (enqueues, coalescing, cancellations, discards accounted for);
 *  - per-entity order: when an item is handed out, every older item of its entity is
 *    finished (done or dead) -- dead letters sent again rejoin the line and are exempt --
 *    and no other item of that entity holds a live lease;
 *  - nothing is handed out twice while a lease the model saw holds;
 *  - the idempotency key of an item never changes (a conflict re-send may extend it).
 *  - delivered items are pruned only where the queue prunes (keepDone 0..3 in half the
 *    inputs): an item may leave the listing unasked only if it was seen done or answered
 *    2xx; the other half keep every delivered item, and the model is exact there.
 * A violation aborts, so libFuzzer records the input.
 *
 * The input is a byte program: the first bytes configure the queue, then each op is an
 * opcode byte and its operands (bytes run out = the run ends).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgsync.h"
#include "internal.h" /* BGS_FUZZ_KEEP_ENGINE empties the engine through its connection */
#include "sqlite3.h"

#define MAX_ITEMS 512
#define N_ENTITY 4
#define LEASE_MS 10000

typedef struct Item {
  int64_t id;
  int bAlive;          /* in the store, as far as the model knows */
  int iEntity;         /* -1 = none */
  int bRejoined;       /* a dead letter sent again: exempt from the order check */
  int64_t nLeaseUntil; /* a lease the model saw and no outcome ended; 0 = none */
  int64_t nAttempt;    /* the attempt of that lease */
  int bTried;          /* ever handed out (survives a dead-letter retry) */
  int bMayBeDone;      /* seen done, or answered 2xx: the queue's keepDone may prune it */
  char zKey[64];
} Item;

typedef struct Fuzz {
  const uint8_t *p;
  size_t n;
  bgs_engine *pEng;
  sqlite3 *db; /* parses the engine's JSON results */
  int64_t now;
  Item aItem[MAX_ITEMS];
  int nItem;
  int bPrunes;         /* the queue keeps only a few delivered items (keepDone) */
} Fuzz;

static void fail(const char *zWhy, int64_t id) {
  fprintf(stderr, "invariant violated: %s (item %lld)\n", zWhy, (long long)id);
  abort();
}

static int next(Fuzz *f) {
  if (f->n == 0) return -1;
  f->n--;
  return *f->p++;
}

static int next_or(Fuzz *f, int dflt) {
  int c = next(f);
  return c < 0 ? dflt : c;
}

static Item *item_find(Fuzz *f, int64_t id) {
  int i;
  for (i = 0; i < f->nItem; i++) {
    if (f->aItem[i].id == id) return &f->aItem[i];
  }
  return NULL;
}

/* The harness's own parsing statements, prepared once on the kept connection and reused
   (preparing them per call was a tenth of every run). A literal's address is its key. */
#define HARNESS_STMTS 8
static struct {
  const char *zSql;
  sqlite3_stmt *pStmt;
} g_aStmt[HARNESS_STMTS];

static sqlite3_stmt *harness_stmt(Fuzz *f, const char *zSql) {
  int i;
  for (i = 0; i < HARNESS_STMTS && g_aStmt[i].zSql != NULL; i++) {
    if (g_aStmt[i].zSql == zSql) return g_aStmt[i].pStmt;
  }
  if (i == HARNESS_STMTS) fail("harness: statement cache full", 0);
  if (sqlite3_prepare_v3(f->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &g_aStmt[i].pStmt, NULL) != SQLITE_OK) {
    fail("harness: prepare", 0);
  }
  g_aStmt[i].zSql = zSql;
  return g_aStmt[i].pStmt;
}

/* Ends a use of a harness statement: its bound text may be freed after this. */
static void harness_done(sqlite3_stmt *pStmt) {
  sqlite3_reset(pStmt);
  sqlite3_clear_bindings(pStmt);
}

static const char zEachSql[] =
    "SELECT json_extract(value, '$.id'), json_extract(value, '$.attempt'),"
    " json_extract(value, '$.leaseUntil'), json_extract(value, '$.key'),"
    " json_extract(value, '$.state'), json_extract(value, '$.error')"
    " FROM json_each(?1, ?2)";
static const char zExtractSql[] = "SELECT json_extract(?1, ?2)";
static const char zCancelledSql[] = "SELECT value FROM json_each(?1, '$.cancelled')";

/* Rows of json_each over zJson at zPath: (id, attempt, leaseUntil, key, state, error) per
   element; end with harness_done. */
static sqlite3_stmt *each(Fuzz *f, const char *zJson, const char *zPath) {
  sqlite3_stmt *pStmt = harness_stmt(f, zEachSql);
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  return pStmt;
}

static int64_t json_i64(Fuzz *f, const char *zJson, const char *zPath, int64_t dflt) {
  sqlite3_stmt *pStmt = harness_stmt(f, zExtractSql);
  int64_t v = dflt;
  sqlite3_bind_text(pStmt, 1, zJson, -1, SQLITE_STATIC);
  sqlite3_bind_text(pStmt, 2, zPath, -1, SQLITE_STATIC);
  if (sqlite3_step(pStmt) == SQLITE_ROW && sqlite3_column_type(pStmt, 0) != SQLITE_NULL) {
    v = sqlite3_column_int64(pStmt, 0);
  }
  harness_done(pStmt);
  return v;
}

/* The state of every item, from bgs_items (the public listing). */
static void states(Fuzz *f, int *aState /* indexed like aItem, -1 = absent */, int *pnListed) {
  static const char *const azState[] = {"pending", "waiting", "inflight", "done",
                                        "conflict", "dead", "auth"};
  char *zOut = NULL;
  sqlite3_stmt *pStmt;
  int i, nListed = 0;
  if (bgs_items(f->pEng, "{\"limit\":100000}", &zOut) != BGS_OK) fail("bgs_items failed", 0);
  for (i = 0; i < f->nItem; i++) aState[i] = -1;
  pStmt = each(f, zOut, "$");
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    int64_t id = sqlite3_column_int64(pStmt, 0);
    const char *zState = (const char *)sqlite3_column_text(pStmt, 4);
    Item *p = item_find(f, id);
    int k, eState = -1;
    for (k = 0; zState && k < 7; k++) {
      if (strcmp(zState, azState[k]) == 0) eState = k;
    }
    if (p == NULL) fail("an item the model never saw", id);
    if (eState < 0) fail("an item in an unknown state", id);
    if (aState[p - f->aItem] >= 0) fail("an item listed twice", id);
    aState[p - f->aItem] = eState;
    if (eState == 3) p->bMayBeDone = 1;
    nListed++;
  }
  harness_done(pStmt);
  bgs_free(zOut);
  *pnListed = nListed;
}

/* An item missing from the listing that keepDone may have pruned: the model drops it. */
static int pruned(Fuzz *f, Item *p) {
  if (!f->bPrunes || !p->bMayBeDone) return 0;
  p->bAlive = 0;
  return 1;
}

/* No item lost: the listing and the model agree exactly (but for pruned delivered items). */
static void check_all(Fuzz *f) {
  int aState[MAX_ITEMS];
  int i, nListed, nAlive = 0;
  char *zOut = NULL;
  int64_t nCounted = 0;
  static const char *const azCount[] = {"$.counts.pending", "$.counts.waiting",
                                        "$.counts.inflight", "$.counts.done",
                                        "$.counts.conflict", "$.counts.dead", "$.counts.auth"};
  states(f, aState, &nListed);
  for (i = 0; i < f->nItem; i++) {
    if (f->aItem[i].bAlive && aState[i] < 0 && pruned(f, &f->aItem[i])) continue;
    if (f->aItem[i].bAlive) {
      nAlive++;
      if (aState[i] < 0) fail("an item was lost", f->aItem[i].id);
    } else if (aState[i] >= 0) {
      fail("a removed item is still listed", f->aItem[i].id);
    }
  }
  if (nAlive != nListed) fail("item count differs", nListed);
  if (bgs_status(f->pEng, NULL, f->now, &zOut) != BGS_OK) fail("bgs_status failed", 0);
  for (i = 0; i < 7; i++) nCounted += json_i64(f, zOut, azCount[i], 0);
  if (nCounted != nListed) fail("status counts differ from the listing", nCounted);
  bgs_free(zOut);
}

/* An item was handed out: lease, order and key invariants. */
static void on_claimed(Fuzz *f, int64_t id, int64_t nAttempt, int64_t nLeaseUntil, const char *zKey,
                       const int *aState) {
  Item *p = item_find(f, id);
  int i;
  if (p == NULL || !p->bAlive) fail("claimed an unknown item", id);
  if (p->nLeaseUntil > f->now) fail("claimed twice under a live lease", id);
  if (zKey == NULL || strncmp(zKey, p->zKey, strlen(p->zKey)) != 0) fail("key changed", id);
  if (p->iEntity >= 0) {
    for (i = 0; i < f->nItem; i++) {
      Item *o = &f->aItem[i];
      if (o == p || !o->bAlive || o->iEntity != p->iEntity) continue;
      if (aState[i] < 0 && pruned(f, o)) continue;
      if (o->nLeaseUntil > f->now) fail("two items of one entity in flight", id);
      if (o->id < p->id && !o->bRejoined && aState[i] != 3 && aState[i] != 5) {
        fail("entity order broken: an older item is unfinished", id);
      }
    }
  }
  p->nLeaseUntil = nLeaseUntil;
  p->nAttempt = nAttempt;
  p->bTried = 1;
}

/* Applies the model side of a claim result (array at zPath of zJson). */
static void claimed_all(Fuzz *f, const char *zJson, const char *zPath, const int *aState) {
  sqlite3_stmt *pStmt = each(f, zJson, zPath);
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    on_claimed(f, sqlite3_column_int64(pStmt, 0), sqlite3_column_int64(pStmt, 1),
               sqlite3_column_int64(pStmt, 2), (const char *)sqlite3_column_text(pStmt, 3), aState);
  }
  harness_done(pStmt);
}

static void op_enqueue(Fuzz *f) {
  static const char *const azMethod[] = {"POST", "PUT", "PATCH", "DELETE"};
  static const char *const azBody[] = {"", "{\"a\":1}", "{\"a\":null,\"b\":{\"c\":2}}", "{\"b\":[1,2]}",
                                       "not json", "\xff\x00\x01", "{\"deep\":{\"x\":{\"y\":null}}}", "[]"};
  static const char *const azPri[] = {"low", "normal", "high", "critical"};
  int m = next_or(f, 0), e = next_or(f, 0), b = next_or(f, 0);
  char zJson[256], zEntity[32] = "";
  char *zOut = NULL;
  int rc, iEntity = (e % (N_ENTITY + 1)) - 1;
  const char *zBody = azBody[b % 8];
  size_t nBody = (b % 8) == 5 ? 3 : strlen(zBody);
  if (iEntity >= 0) snprintf(zEntity, sizeof(zEntity), ",\"entity\":\"e%d\"", iEntity);
  snprintf(zJson, sizeof(zJson),
           "{\"queue\":\"q\",\"method\":\"%s\",\"url\":\"https://api.test/%s\",\"priority\":\"%s\"%s}",
           azMethod[m % 4], (m / 4) % 2 ? "x" : "y", azPri[(e / 8) % 4], zEntity);
  rc = bgs_enqueue(f->pEng, zJson, nBody ? zBody : NULL, nBody, f->now, &zOut);
  if (rc == BGS_QUEUE_FULL || rc == BGS_BODY_TOO_LARGE) return;
  if (rc != BGS_OK) fail(bgs_errmsg(f->pEng), rc);
  {
    int64_t id = json_i64(f, zOut, "$.id", -1);
    int64_t nCoalesced = json_i64(f, zOut, "$.coalesced", 0);
    if (id < 0) {
      /* Cancelled: the listed items are gone. */
      sqlite3_stmt *pStmt = harness_stmt(f, zCancelledSql);
      sqlite3_bind_text(pStmt, 1, zOut, -1, SQLITE_STATIC);
      while (sqlite3_step(pStmt) == SQLITE_ROW) {
        Item *p = item_find(f, sqlite3_column_int64(pStmt, 0));
        if (p == NULL || !p->bAlive) fail("cancelled an unknown item", 0);
        if (p->bTried) fail("cancelled an attempted item", p->id);
        p->bAlive = 0;
      }
      harness_done(pStmt);
    } else if (nCoalesced) {
      Item *p = item_find(f, id);
      if (p == NULL || !p->bAlive) fail("coalesced into an unknown item", id);
      if (p->bTried) fail("coalesced into an attempted item", id);
    } else if (f->nItem < MAX_ITEMS) {
      Item *p = &f->aItem[f->nItem++];
      memset(p, 0, sizeof(*p));
      p->id = id;
      p->bAlive = 1;
      p->iEntity = iEntity;
      {
        sqlite3_stmt *pStmt = harness_stmt(f, zExtractSql);
        sqlite3_bind_text(pStmt, 1, zOut, -1, SQLITE_STATIC);
        sqlite3_bind_text(pStmt, 2, "$.key", -1, SQLITE_STATIC);
        if (sqlite3_step(pStmt) == SQLITE_ROW) {
          snprintf(p->zKey, sizeof(p->zKey), "%s", (const char *)sqlite3_column_text(pStmt, 0));
        }
        harness_done(pStmt);
      }
    } else {
      fail("harness: too many items", id);
    }
  }
  bgs_free(zOut);
}

static void op_claim(Fuzz *f) {
  int aState[MAX_ITEMS], nListed;
  char *zOut = NULL;
  int b = next_or(f, 0);
  int nMax = 1 + b % 4;
  int64_t idAhead = -1;
  if (b & 0x10) {
    /* The head start's pair: bgs_ahead names what this claim hands out first, and
       bgs_claim_item leases exactly that item. */
    char *zAhead = NULL;
    if (bgs_ahead(f->pEng, "q", f->now, &zAhead) != BGS_OK) fail(bgs_errmsg(f->pEng), 0);
    idAhead = json_i64(f, zAhead, "$.item.id", -1);
    bgs_free(zAhead);
  }
  if ((b & 0x20) && idAhead > 0) {
    if (bgs_claim_item(f->pEng, "q", idAhead, f->now, &zOut) != BGS_OK) fail(bgs_errmsg(f->pEng), 0);
  } else if (bgs_claim(f->pEng, "q", nMax, f->now, &zOut) != BGS_OK) {
    fail(bgs_errmsg(f->pEng), 0);
  }
  if (idAhead > 0 && json_i64(f, zOut, "$[0].id", -1) != idAhead) fail("the claim did not hand out the item bgs_ahead named", idAhead);
  /* The states after the claim: an older item that expired during it is dead now. */
  states(f, aState, &nListed);
  claimed_all(f, zOut, "$", aState);
  bgs_free(zOut);
}

static const int aStatus[] = {200, 201, 204, 0, 503, 500, 429, 408, 409, 412, 401, 400, 404, 301};
#define N_STATUS (int)(sizeof(aStatus) / sizeof(aStatus[0]))

/* Any item the model saw leased, chosen by b. */
static Item *leased(Fuzz *f, int b) {
  int i, k = 0, nLeased = 0;
  for (i = 0; i < f->nItem; i++) nLeased += f->aItem[i].bAlive && f->aItem[i].nAttempt > 0;
  if (nLeased == 0) return NULL;
  b %= nLeased;
  for (i = 0; i < f->nItem; i++) {
    if (f->aItem[i].bAlive && f->aItem[i].nAttempt > 0 && k++ == b) return &f->aItem[i];
  }
  return NULL;
}

static void op_outcome(Fuzz *f) {
  Item *p = leased(f, next_or(f, 0));
  int s = next_or(f, 0), h = next_or(f, 0);
  char zJson[256];
  char *zOut = NULL;
  int rc;
  int64_t nAttempt;
  if (p == NULL) return;
  nAttempt = p->nAttempt - ((h & 0x80) ? (h & 3) : 0); /* sometimes an old attempt */
  snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":%lld,\"status\":%d%s}", (long long)p->id,
           (long long)nAttempt, aStatus[s % N_STATUS],
           (h & 1) ? ",\"headers\":{\"retry-after\":\"5\"}" : (h & 2) ? ",\"headers\":{\"etag\":\"\\\"v2\\\"\"}" : "");
  rc = bgs_outcome(f->pEng, zJson, (h & 4) ? "{\"a\":2}" : NULL, (h & 4) ? 7 : 0, f->now, &zOut);
  if (aStatus[s % N_STATUS] / 100 == 2 && (rc == BGS_OK || rc == BGS_STALE)) p->bMayBeDone = 1;
  if (rc == BGS_OK) {
    p->nLeaseUntil = 0;
  } else if (rc != BGS_STALE && rc != BGS_NOT_FOUND) {
    fail(bgs_errmsg(f->pEng), rc);
  }
  bgs_free(zOut);
}

static void op_dead(Fuzz *f) {
  int b = next_or(f, 0);
  Item *p;
  int rc;
  if (f->nItem == 0) return;
  p = &f->aItem[b % f->nItem];
  if (b & 0x80) {
    rc = bgs_dead_discard(f->pEng, p->id, f->now);
    if (rc == BGS_OK) {
      if (!p->bAlive) fail("discarded a removed item", p->id);
      p->bAlive = 0;
    }
  } else {
    rc = bgs_dead_retry(f->pEng, p->id, f->now);
    if (rc == BGS_OK) {
      p->bRejoined = 1;
      p->nLeaseUntil = 0;
      p->nAttempt = 0;
    }
  }
  if (rc != BGS_OK && rc != BGS_INVALID_STATE && rc != BGS_NOT_FOUND) fail(bgs_errmsg(f->pEng), rc);
  if (rc == BGS_NOT_FOUND && p->bAlive && !pruned(f, p)) fail("a live item was not found", p->id);
}

static void op_batch(Fuzz *f) {
  int aState[MAX_ITEMS], nListed;
  char *zOut = NULL, *zReport, *zResp;
  unsigned char *pBody = NULL;
  size_t nBody = 0;
  int rc, mode = next_or(f, 0), i = 0;
  sqlite3_stmt *pStmt;
  sqlite3_str *pReport, *pResp;
  rc = bgs_claim_batch(f->pEng, "q", f->now, &zOut, &pBody, &nBody);
  if (rc == BGS_NO_BATCH) return;
  if (rc != BGS_OK) fail(bgs_errmsg(f->pEng), rc);
  states(f, aState, &nListed);
  claimed_all(f, zOut, "$.items", aState);
  /* Report it back: per-item statuses, a failed batch, or garbage. */
  pReport = sqlite3_str_new(NULL);
  pResp = sqlite3_str_new(NULL);
  sqlite3_str_appendall(pReport, "{\"items\":[");
  sqlite3_str_appendall(pResp, "{\"results\":[");
  pStmt = each(f, zOut, "$.items");
  while (sqlite3_step(pStmt) == SQLITE_ROW) {
    int s = next_or(f, 0);
    sqlite3_str_appendf(pReport, "%s{\"id\":%lld,\"attempt\":%lld}", i ? "," : "",
                        sqlite3_column_int64(pStmt, 0), sqlite3_column_int64(pStmt, 1));
    if (s % 5 != 0) { /* 1 in 5 results missing */
      Item *q = item_find(f, sqlite3_column_int64(pStmt, 0));
      if (q != NULL && aStatus[s % N_STATUS] / 100 == 2) q->bMayBeDone = 1;
      sqlite3_str_appendf(pResp, "%s{\"key\":\"%s\",\"status\":%d}", i ? "," : "",
                          (const char *)sqlite3_column_text(pStmt, 3), aStatus[s % N_STATUS]);
    } else {
      sqlite3_str_appendf(pResp, "%s7", i ? "," : "");
    }
    i++;
  }
  harness_done(pStmt);
  sqlite3_str_appendf(pReport, "],\"status\":%d}", (mode % 4) == 0 ? 503 : (mode % 4) == 1 ? 401 : 200);
  sqlite3_str_appendall(pResp, "]}");
  zReport = sqlite3_str_finish(pReport);
  zResp = sqlite3_str_finish(pResp);
  bgs_free(zOut);
  zOut = NULL;
  if (i > 0) {
    const char *zBody = (mode % 8) == 2 ? "{\"results\":" : zResp;
    rc = bgs_batch_outcome(f->pEng, zReport, zBody, strlen(zBody), f->now, &zOut);
    if (rc != BGS_OK) fail(bgs_errmsg(f->pEng), rc);
    /* Every item the engine accepted a result for has no live lease any more. */
    pStmt = each(f, zOut, "$.results");
    while (sqlite3_step(pStmt) == SQLITE_ROW) {
      Item *p = item_find(f, sqlite3_column_int64(pStmt, 0));
      if (p == NULL) fail("batch result for an unknown item", sqlite3_column_int64(pStmt, 0));
      if (sqlite3_column_type(pStmt, 5) == SQLITE_NULL) p->nLeaseUntil = 0;
    }
    harness_done(pStmt);
  }
  bgs_free(zOut);
  bgs_free(pBody);
  sqlite3_free(zReport);
  sqlite3_free(zResp);
}

static void op_reads(Fuzz *f) {
  char *zOut = NULL;
  int b = next_or(f, 0);
  char zFilter[64];
  snprintf(zFilter, sizeof(zFilter), "{\"id\":%d,\"limit\":%d}", b % 8 + 1, b % 5 + 1);
  if (bgs_attempts(f->pEng, (b & 1) ? zFilter : NULL, &zOut) != BGS_OK) fail("attempts", 0);
  bgs_free(zOut);
  if (bgs_auth_release(f->pEng, (b & 2) ? "q" : NULL, f->now, &zOut) != BGS_OK) fail("auth release", 0);
  bgs_free(zOut);
  {
    unsigned char *pBuf = NULL;
    size_t nBuf = 0;
    if (bgs_changes_take(f->pEng, &pBuf, &nBuf) != BGS_OK) fail("changes", 0);
    bgs_free(pBuf);
  }
}

/* A new store costs a schema creation; every run instead starts from the chunks of one
   made at start-up (as a host reopens a stored engine). */
static unsigned char *g_pTemplate; /* a bgs_changes_take buffer of the new store */

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bgs_image *template_image(void) {
  bgs_image *pImg = NULL;
  uint32_t n, i, nChunk;
  double rSize;
  if (g_pTemplate == NULL) {
    bgs_engine *pEng = NULL;
    bgs_config cfg;
    size_t nBuf = 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.zInstallId = "fz";
    if (bgs_image_new(&pImg) != BGS_OK || bgs_open(pImg, &cfg, 1000, &pEng) != BGS_OK) abort();
    if (bgs_changes_take(pEng, &g_pTemplate, &nBuf) != BGS_OK) abort();
    bgs_close(pEng);
  }
  nChunk = get_u32(g_pTemplate);
  n = get_u32(g_pTemplate + 4);
  memcpy(&rSize, g_pTemplate + 8, 8);
  if (bgs_image_new(&pImg) != BGS_OK) abort();
  for (i = 0; i < n; i++) {
    const unsigned char *pEntry = g_pTemplate + 16 + (size_t)i * 8;
    const unsigned char *pChunk = g_pTemplate + 16 + (size_t)n * 8 + (size_t)i * nChunk;
    if (bgs_image_load(pImg, get_u32(pEntry), pChunk, nChunk, get_u32(pEntry + 4)) != BGS_OK) abort();
  }
  if (bgs_image_set_size(pImg, (int64_t)rSize) != BGS_OK) abort();
  return pImg;
}

/* Long runs by hand may set BGS_FUZZ_KEEP_ENGINE=1: one engine then serves every input,
   emptied by SQL between inputs (every row of every table but the install id and the
   creation time, which a new store has), instead of a new engine per input. Preparing
   the engine's statements anew was 40% of each input. The logical state each input
   starts from is the same (ids restart at 1, no queue, no attempt); the pages differ
   (free pages), and bgs_open runs once. Replay a reported input without the variable. */
static bgs_engine *g_pKept;

static void empty_engine(bgs_engine *pEng, uint64_t uSeed) {
  static const char zEmpty[] =
      "BEGIN; DELETE FROM items; DELETE FROM attempts; DELETE FROM conflicts; DELETE FROM queues;"
      " DELETE FROM meta WHERE key NOT IN ('install_id', 'created_at'); COMMIT;";
  unsigned char *pBuf = NULL;
  size_t nBuf = 0;
  if (sqlite3_exec(pEng->db, zEmpty, NULL, NULL, NULL) != SQLITE_OK) fail("harness: empty the engine", 0);
  if (bgs_changes_take(pEng, &pBuf, &nBuf) != BGS_OK) fail("harness: take", 0);
  bgs_free(pBuf);
  pEng->cfg.uSeed = uSeed;
}

static bgs_engine *engine_for(const bgs_config *pCfg, int64_t now) {
  static int bKeep = -1;
  bgs_engine *pEng = NULL;
  if (bKeep < 0) {
    const char *z = getenv("BGS_FUZZ_KEEP_ENGINE");
    bKeep = z != NULL && z[0] != 0 && strcmp(z, "0") != 0;
  }
  if (bKeep && g_pKept != NULL) {
    empty_engine(g_pKept, pCfg->uSeed);
    return g_pKept;
  }
  if (bgs_open(template_image(), pCfg, now, &pEng) != BGS_OK) abort();
  if (bKeep) g_pKept = pEng;
  return pEng;
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  static Fuzz f;
  sqlite3 *db = f.db; /* the parsing connection is kept across runs */
  bgs_config cfg;
  char zQueue[256];
  int c0, c1, c2, nOps = 0;
  memset(&f, 0, sizeof(f));
  f.db = db;
  f.p = pData;
  f.n = nData;
  f.now = 1000;
  c0 = next_or(&f, 0);
  c1 = next_or(&f, 0);
  c2 = next_or(&f, 0);
  memset(&cfg, 0, sizeof(cfg));
  cfg.uSeed = (uint64_t)c0;
  cfg.nLeaseMs = LEASE_MS;
  cfg.nMaxAttemptLog = 16;
  cfg.zInstallId = "fz";
  f.pEng = engine_for(&cfg, f.now);
  if (f.db == NULL && sqlite3_open(":memory:", &f.db) != SQLITE_OK) abort();
  snprintf(zQueue, sizeof(zQueue),
           "{\"name\":\"q\",\"backoff\":{\"kind\":\"%s\",\"initialMs\":%d,\"jitter\":\"%s\",\"maxMs\":600000},"
           "\"maxAttempts\":%d,\"maxAgeMs\":%d,\"maxItems\":%d,\"coalesce\":%s,\"keepDone\":%d%s}",
           (c1 & 1) ? "linear" : "exponential", 1000 * (1 + (c1 >> 1) % 8),
           (c1 & 0x40) ? "full" : (c1 & 0x80) ? "equal" : "none", c2 % 5,
           (c2 & 0x08) ? 3600000 : 0, (c2 & 0x10) ? 6 : 0, (c2 & 0x20) ? "true" : "false",
           (c2 & 0x80) ? c0 % 4 : 1000000,
           (c2 & 0x40) ? ",\"batch\":{\"url\":\"https://api.test/batch\",\"maxItems\":3}" : "");
  f.bPrunes = (c2 & 0x80) != 0;
  if (bgs_queue_configure(f.pEng, zQueue, f.now) != BGS_OK) fail(bgs_errmsg(f.pEng), 0);
  for (;;) {
    int op = next(&f);
    if (op < 0 || nOps++ > 200) break;
    switch (op % 8) {
      case 0:
      case 1:
        op_enqueue(&f);
        break;
      case 2:
        op_claim(&f);
        break;
      case 3:
        op_outcome(&f);
        break;
      case 4:
        f.now += (int64_t)next_or(&f, 1) * ((op & 0x80) ? 60000 : 250);
        break;
      case 5:
        op_dead(&f);
        break;
      case 6:
        op_batch(&f);
        break;
      default:
        op_reads(&f);
        break;
    }
    if ((op & 0x70) == 0x70) check_all(&f);
  }
  check_all(&f);
  if (f.pEng != g_pKept) bgs_close(f.pEng);
  return 0;
}
