/*
 * fuzz_image.c -- the page store under the VFS (image.c) and its host protocol
 * (bgs_changes_take, bgs_image_load, bgs_image_set_size), libFuzzer.
 *
 * The harness plays both sides: the VFS writing and truncating the file (the internal
 * bgs__image_* functions) and the host keeping a "durable" copy that only ever learns
 * what a take handed it, applied the way the glue applies it (write the listed chunks,
 * drop every chunk at or past ceil(size / chunk size), remember the size).
 *
 * Invariants (a violation aborts):
 *  - the image reads exactly what a plain byte array (the model file) holds;
 *  - a rollback returns the image to its last commit point (bgs__image_commit, or the
 *    load): the model keeps the file as it was then;
 *  - a take followed by a reload reproduces the file: an image loaded from the durable
 *    copy reads byte for byte what the live image reads, and the same size;
 *  - a take's buffer is well formed (header, sizes, each chunk once, each CRC right), and
 *    a view (bgs__image_view, every other take) lists the same, in place;
 *  - a damaged chunk is always detected: one flipped bit, a wrong CRC or an oversized
 *    chunk makes bgs_image_load return BGS_CORRUPT;
 *  - mode "engine": a real engine over the image (enqueue/claim/outcome with takes in
 *    between), reopened from the durable copy, lists the same items as before.
 *
 * Input: byte 0 chooses the mode (31 mod 32: engine), then an op program (opcode byte + operands).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgsync.h"
#include "internal.h"

/* image.c, not declared in internal.h (used by the engine through vfs_mirror.c). */
int bgs__image_has_changes(const bgs_image *p);

#define CHUNK BGS_CHUNK_SIZE
#define MAX_CHUNKS 16
#define MAX_FILE ((int64_t)MAX_CHUNKS * CHUNK)
#define MAX_STORED 1024 /* chunks the durable copy holds (the engine mode grows past MAX_CHUNKS) */

static void fail(const char *zWhy, long long a, long long b) {
  fprintf(stderr, "invariant violated: %s (%lld, %lld)\n", zWhy, a, b);
  abort();
}

typedef struct Durable {
  unsigned char *apChunk[MAX_STORED]; /* NULL = not stored */
  int64_t nSize;
} Durable;

typedef struct Prog {
  const uint8_t *p;
  size_t n;
} Prog;

static int next(Prog *g) {
  if (g->n == 0) return -1;
  g->n--;
  return *g->p++;
}
static int next_or(Prog *g, int d) {
  int c = next(g);
  return c < 0 ? d : c;
}

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void durable_clear(Durable *d) {
  int i;
  for (i = 0; i < MAX_STORED; i++) {
    free(d->apChunk[i]);
    d->apChunk[i] = NULL;
  }
  d->nSize = 0;
}

/* Checks a take's buffer and applies it to the durable copy, as the glue does. */
static void durable_apply(Durable *d, const unsigned char *pBuf, size_t nBuf) {
  uint32_t nChunk, n, i, nLive;
  double rSize;
  unsigned char seen[MAX_STORED];
  if (nBuf < 16) fail("take: short header", (long long)nBuf, 0);
  nChunk = get_u32(pBuf);
  n = get_u32(pBuf + 4);
  memcpy(&rSize, pBuf + 8, 8);
  if (nChunk != CHUNK) fail("take: chunk size", nChunk, CHUNK);
  if (nBuf != 16 + (size_t)n * (8 + CHUNK)) fail("take: length", (long long)nBuf, n);
  if (!(rSize >= 0 && rSize <= (double)MAX_STORED * CHUNK) || rSize != (double)(int64_t)rSize) {
    fail("take: size", (long long)rSize, 0);
  }
  d->nSize = (int64_t)rSize;
  nLive = (uint32_t)((d->nSize + CHUNK - 1) / CHUNK);
  memset(seen, 0, sizeof(seen));
  for (i = 0; i < n; i++) {
    uint32_t iChunk = get_u32(pBuf + 16 + (size_t)i * 8);
    uint32_t uCrc = get_u32(pBuf + 16 + (size_t)i * 8 + 4);
    const unsigned char *pData = pBuf + 16 + (size_t)n * 8 + (size_t)i * CHUNK;
    if (iChunk >= nLive) fail("take: a chunk past the end", iChunk, nLive);
    if (seen[iChunk]) fail("take: a chunk twice", iChunk, 0);
    seen[iChunk] = 1;
    if (bgs_crc32(pData, CHUNK) != uCrc) fail("take: wrong crc", iChunk, 0);
    if (d->apChunk[iChunk] == NULL) d->apChunk[iChunk] = malloc(CHUNK);
    memcpy(d->apChunk[iChunk], pData, CHUNK);
  }
  for (i = nLive; i < MAX_STORED; i++) {
    free(d->apChunk[i]);
    d->apChunk[i] = NULL;
  }
}

/* An image loaded from the durable copy (chunks never stored are not loaded: zeros). */
static bgs_image *durable_load(const Durable *d) {
  bgs_image *pImg = NULL;
  int i;
  if (bgs_image_new(&pImg) != BGS_OK) abort();
  for (i = 0; i < MAX_STORED; i++) {
    if (d->apChunk[i] == NULL) continue;
    if (bgs_image_load(pImg, (uint32_t)i, d->apChunk[i], CHUNK, bgs_crc32(d->apChunk[i], CHUNK)) != BGS_OK) {
      fail("load of a good chunk failed", i, 0);
    }
  }
  if (bgs_image_set_size(pImg, d->nSize) != BGS_OK) fail("set_size", (long long)d->nSize, 0);
  return pImg;
}

static unsigned char g_aRead[MAX_FILE * 2];
static unsigned char g_aRead2[MAX_FILE * 2];

/* The image reads as the model file (nModel bytes of aModel). */
static void check_same(bgs_image *pImg, const unsigned char *aModel, int64_t nModel, const char *zWhat) {
  int64_t i;
  if (bgs__image_size(pImg) != nModel) fail(zWhat, (long long)bgs__image_size(pImg), (long long)nModel);
  bgs__image_read(pImg, 0, g_aRead, (size_t)nModel);
  /* memcmp first: a byte loop is instrumented for coverage at every byte, and this check
     runs after most ops (it was most of the target's time). */
  if (memcmp(g_aRead, aModel, (size_t)nModel) == 0) return;
  for (i = 0; i < nModel; i++) {
    if (g_aRead[i] != aModel[i]) {
      fprintf(stderr, "byte %lld of %lld: image %d, model %d\n", (long long)i, (long long)nModel, g_aRead[i], aModel[i]);
      fail(zWhat, (long long)i, g_aRead[i]);
    }
  }
}

/* Every way a stored chunk can be damaged is refused. */
static void check_damage(const Durable *d, Prog *g) {
  int i = next_or(g, 0) % MAX_CHUNKS, bit = next_or(g, 0) * 32 + next_or(g, 0) % 32;
  unsigned char aCopy[CHUNK + 1];
  bgs_image *pImg = NULL;
  uint32_t uCrc;
  if (d->apChunk[i] == NULL) return;
  memcpy(aCopy, d->apChunk[i], CHUNK);
  uCrc = bgs_crc32(aCopy, CHUNK);
  if (bgs_image_new(&pImg) != BGS_OK) abort();
  aCopy[(bit / 8) % CHUNK] ^= (unsigned char)(1u << (bit % 8));
  if (bgs_image_load(pImg, (uint32_t)i, aCopy, CHUNK, uCrc) != BGS_CORRUPT) fail("a flipped bit was not detected", i, bit);
  aCopy[(bit / 8) % CHUNK] ^= (unsigned char)(1u << (bit % 8));
  if (bgs_image_load(pImg, (uint32_t)i, aCopy, CHUNK, uCrc ^ (1u << (bit % 32))) != BGS_CORRUPT) {
    fail("a wrong crc was not detected", i, bit);
  }
  aCopy[CHUNK] = 0;
  if (bgs_image_load(pImg, (uint32_t)i, aCopy, CHUNK + 1, bgs_crc32(aCopy, CHUNK + 1)) != BGS_CORRUPT) {
    fail("an oversized chunk was accepted", i, 0);
  }
  /* A short chunk with the right crc is a legal last chunk: zero-padded. */
  if (bgs_image_load(pImg, (uint32_t)i, aCopy, 100, bgs_crc32(aCopy, 100)) != BGS_OK) fail("short chunk", i, 0);
  bgs__image_read(pImg, (int64_t)i * CHUNK, g_aRead2, CHUNK);
  if (memcmp(g_aRead2, aCopy, 100) != 0) fail("short chunk: data", i, 0);
  {
    static const unsigned char aZero[CHUNK];
    if (memcmp(g_aRead2 + 100, aZero, CHUNK - 100) != 0) fail("short chunk: not zero-padded", i, 0);
  }
  bgs_image_free(pImg);
}

static unsigned char g_aModel[MAX_FILE * 2];
static unsigned char g_aCommitted[MAX_FILE * 2]; /* the model file at the last commit point */

/* A take as bgs__image_view hands it over, copied into bgs__image_take's layout. */
static int take_by_view(bgs_image *pImg, unsigned char **ppBuf, size_t *pnBuf) {
  const bgs_chunk_view *aView;
  uint32_t n, i;
  double rSize = (double)bgs__image_size(pImg);
  unsigned char *pBuf;
  int rc = bgs__image_view(pImg, &aView, &n);
  if (rc != BGS_OK) return rc;
  pBuf = malloc(16 + (size_t)n * (8 + CHUNK));
  if (pBuf == NULL) abort();
  memcpy(pBuf, &(uint32_t){CHUNK}, 4); /* little-endian hosts only, as the engine */
  memcpy(pBuf + 4, &n, 4);
  memcpy(pBuf + 8, &rSize, 8);
  for (i = 0; i < n; i++) {
    memcpy(pBuf + 16 + i * 8, &aView[i].iChunk, 4);
    memcpy(pBuf + 16 + i * 8 + 4, &aView[i].uCrc, 4);
    memcpy(pBuf + 16 + (size_t)n * 8 + (size_t)i * CHUNK, aView[i].pData, CHUNK);
  }
  *ppBuf = pBuf;
  *pnBuf = 16 + (size_t)n * (8 + CHUNK);
  return BGS_OK;
}

static void run_image(Prog *g) {
  Durable d;
  bgs_image *pImg = NULL;
  int64_t nModel = 0, nCommitted = 0;
  int nOps = 0, nTakes = 0;
  memset(&d, 0, sizeof(d));
  memset(g_aModel, 0, sizeof(g_aModel));
  memset(g_aCommitted, 0, sizeof(g_aCommitted));
  if (bgs_image_new(&pImg) != BGS_OK) abort();
  for (;;) {
    int op = next(g);
    if (op < 0 || nOps++ > 64) break;
    switch (op % 8) {
      case 0:
      case 1: { /* write: offset (chunk + in-chunk), length, byte */
        int64_t iOff = (int64_t)(next_or(g, 0) % MAX_CHUNKS) * CHUNK;
        size_t n;
        int b = next_or(g, 0x5a);
        iOff += (op & 0x80) ? next_or(g, 0) * 16 : 0;
        n = (op & 0x40) ? (size_t)next_or(g, 1) * 64 + 1 : (op & 0x20) ? CHUNK : (size_t)next_or(g, 0) + 1;
        if (iOff + (int64_t)n > MAX_FILE) n = (size_t)(MAX_FILE - iOff);
        if (n == 0) break;
        memset(g_aRead2, b, n);
        g_aRead2[0] = (unsigned char)op; /* not a uniform run: offsets matter */
        if (bgs__image_write(pImg, iOff, g_aRead2, n) != BGS_OK) fail("write", (long long)iOff, (long long)n);
        memcpy(g_aModel + iOff, g_aRead2, n);
        if (iOff + (int64_t)n > nModel) nModel = iOff + (int64_t)n;
        break;
      }
      case 2: { /* truncate (a shrink; a larger size is a no-op, as the VFS defines) */
        int64_t nNew = (int64_t)(next_or(g, 0) % (MAX_CHUNKS + 1)) * CHUNK;
        if (op & 0x80) nNew += next_or(g, 0) * 16;
        if (bgs__image_truncate(pImg, nNew) != BGS_OK) fail("truncate", (long long)nNew, 0);
        if (nNew < nModel) {
          memset(g_aModel + nNew, 0, (size_t)(nModel - nNew));
          nModel = nNew;
        }
        break;
      }
      case 3: { /* take: the host writes the changes durably */
        unsigned char *pBuf = NULL;
        size_t nBuf = 0;
        int rc = nTakes++ % 2 ? take_by_view(pImg, &pBuf, &nBuf) : bgs__image_take(pImg, &pBuf, &nBuf);
        if (rc != BGS_OK) fail("take", 0, 0);
        durable_apply(&d, pBuf, nBuf);
        free(pBuf);
        if (bgs__image_has_changes(pImg)) fail("changes left after a take", 0, 0);
        /* take + reload reproduces the file */
        {
          bgs_image *pBack = durable_load(&d);
          check_same(pBack, g_aModel, nModel, "reload after take differs from the file");
          bgs_image_free(pBack);
        }
        break;
      }
      case 4: /* the host reopens from the durable copy (a failed flush, a restart) */
        bgs_image_free(pImg);
        pImg = durable_load(&d);
        nModel = d.nSize;
        memset(g_aModel, 0, sizeof(g_aModel));
        bgs__image_read(pImg, 0, g_aModel, (size_t)nModel);
        memcpy(g_aCommitted, g_aModel, sizeof(g_aModel));
        nCommitted = nModel;
        break;
      case 5: /* a commit point (a transaction ended) */
        bgs__image_commit(pImg);
        memcpy(g_aCommitted, g_aModel, (size_t)(nModel > nCommitted ? nModel : nCommitted));
        nCommitted = nModel;
        break;
      case 6: /* a rollback to the last commit point */
        bgs__image_rollback(pImg);
        memcpy(g_aModel, g_aCommitted, (size_t)(nModel > nCommitted ? nModel : nCommitted));
        nModel = nCommitted;
        break;
      default:
        check_damage(&d, g);
        break;
    }
    /* Writes are checked by the next full comparison (each op is cheap; a check is not). */
    if (op % 8 >= 2 || g->n == 0) check_same(pImg, g_aModel, nModel, "the image differs from the model file");
  }
  check_same(pImg, g_aModel, nModel, "the image differs from the model file at the end");
  bgs_image_free(pImg);
  durable_clear(&d);
}

/* ---- engine mode: the same host protocol under a real engine ---- */

static void take_into(bgs_engine *pEng, Durable *d) {
  unsigned char *pBuf = NULL;
  size_t nBuf = 0;
  if (bgs_changes_take(pEng, &pBuf, &nBuf) != BGS_OK) fail("bgs_changes_take", 0, 0);
  durable_apply(d, pBuf, nBuf);
  bgs_free(pBuf);
}

static void run_engine(Prog *g) {
  Durable d;
  bgs_image *pImg = NULL;
  bgs_engine *pEng = NULL;
  bgs_config cfg;
  int64_t now = 1000;
  int nOps = 0;
  char *zOut = NULL, *zBefore = NULL;
  memset(&d, 0, sizeof(d));
  memset(&cfg, 0, sizeof(cfg));
  cfg.zInstallId = "fi";
  cfg.nMaxAttemptLog = 8;
  if (bgs_image_new(&pImg) != BGS_OK || bgs_open(pImg, &cfg, now, &pEng) != BGS_OK) abort();
  if (bgs_queue_configure(pEng, "{\"name\":\"q\",\"backoff\":{\"initialMs\":10,\"jitter\":\"none\"}}", now) != BGS_OK) abort();
  take_into(pEng, &d);
  for (;;) {
    int op = next(g);
    char zJson[200];
    if (op < 0 || nOps++ > 60) break;
    now += 7;
    switch (op % 5) {
      case 0:
      case 1: { /* enqueue a body of 0..~12 KB: items spill over several pages */
        size_t n = (size_t)next_or(g, 0) * 48;
        unsigned char *pBody = malloc(n + 1);
        memset(pBody, 'a' + op % 26, n + 1);
        snprintf(zJson, sizeof(zJson), "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/%d\"}", op);
        if (bgs_enqueue(pEng, zJson, pBody, n, now, &zOut) != BGS_OK) fail("enqueue", 0, 0);
        bgs_free(zOut);
        free(pBody);
        break;
      }
      case 2: { /* claim one and report 200 or 503 */
        int64_t id;
        if (bgs_claim(pEng, "q", 1, now, &zOut) != BGS_OK) fail("claim", 0, 0);
        if (sscanf(zOut, "[{\"id\":%lld", (long long *)&id) == 1) {
          int nAttempt = 0;
          const char *zA = strstr(zOut, "\"attempt\":");
          if (zA) nAttempt = atoi(zA + 10);
          snprintf(zJson, sizeof(zJson), "{\"id\":%lld,\"attempt\":%d,\"status\":%d}", (long long)id, nAttempt,
                   (op & 0x80) ? 200 : 503);
          bgs_free(zOut);
          zOut = NULL;
          if (bgs_outcome(pEng, zJson, NULL, 0, now, &zOut) != BGS_OK) fail("outcome", id, 0);
        }
        bgs_free(zOut);
        break;
      }
      case 3: /* flush */
        take_into(pEng, &d);
        break;
      default: { /* flush, then reopen from the durable copy: the same items */
        take_into(pEng, &d);
        if (bgs_items(pEng, "{\"limit\":100000}", &zBefore) != BGS_OK) fail("items", 0, 0);
        bgs_close(pEng);
        pEng = NULL;
        if (bgs_open(durable_load(&d), &cfg, now, &pEng) != BGS_OK) fail("reopen from the durable copy", 0, 0);
        if (bgs_items(pEng, "{\"limit\":100000}", &zOut) != BGS_OK) fail("items after reopen", 0, 0);
        if (strcmp(zOut, zBefore) != 0) {
          fprintf(stderr, "before: %s\nafter:  %s\n", zBefore, zOut);
          fail("a reopened engine lists other items", 0, 0);
        }
        bgs_free(zOut);
        bgs_free(zBefore);
        zBefore = NULL;
        take_into(pEng, &d);
        break;
      }
    }
  }
  bgs_close(pEng);
  durable_clear(&d);
}

/* Long runs by hand may fix the mode with BGS_FUZZ_IMAGE_MODE=pages or =engine: an engine
   input costs a database and its reopens (tens of times a page-store input), and mutation
   keeps about half the inputs in that mode, so a mixed run spends nearly all its time
   there. Unset (npm test, corpus replay): byte 0 chooses. */
static int mode_of(uint8_t b) {
  static int eFixed = -1; /* 0 by byte, 1 pages, 2 engine */
  if (eFixed < 0) {
    const char *z = getenv("BGS_FUZZ_IMAGE_MODE");
    eFixed = z == NULL ? 0 : strcmp(z, "pages") == 0 ? 1 : strcmp(z, "engine") == 0 ? 2 : 0;
  }
  if (eFixed != 0) return eFixed;
  /* One input in 32 takes the engine mode. */
  return b % 32 == 31 ? 2 : 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *pData, size_t nData) {
  Prog g;
  if (nData < 1) return 0;
  g.p = pData + 1;
  g.n = nData - 1;
  if (mode_of(pData[0]) == 2) run_engine(&g);
  else run_image(&g);
  return 0;
}
