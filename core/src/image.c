/*
 * image.c -- a database file held in memory as BGS_CHUNK_SIZE chunks, with the set
 * of chunks changed since the host last took them.
 *
 * Invariants:
 *  - apChunk[i] is NULL for a chunk never written (it reads as zeros) and otherwise
 *    owns BGS_CHUNK_SIZE bytes; bytes past nSize in the last chunk are zero.
 *  - aDirty lists each changed chunk index once (abDirty[i] marks membership), so
 *    taking the changes costs the number of changes, not the size of the file.
 *  - abCrcOk[i] != 0 when aCrc[i] is the CRC-32 of chunk i as it is now (all 4 KiB). A
 *    write updates it from the bytes it changed (bgs__crc32_delta_copy), so the take does not
 *    sum whole chunks -- unless the CPU sums whole chunks for less (bgs__crc32_clmul):
 *    then a write leaves the CRC unknown. Chunks whose CRC is unknown (written so, a
 *    short chunk loaded, a truncated tail) are summed at the take.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

struct bgs_image {
  unsigned char **apChunk; /* nAlloc slots; NULL = all zeros */
  uint32_t nAlloc;         /* slots allocated in apChunk and abDirty */
  int64_t nSize;           /* file size in bytes */
  unsigned char *abDirty;  /* abDirty[i] != 0 when i is in aDirty */
  uint32_t *aDirty;        /* changed chunk indexes, in order of first change */
  uint32_t nDirty;         /* entries used in aDirty */
  int bSizeChanged;        /* nSize changed since the last take */
  uint32_t *aCrc;          /* nAlloc slots: the chunk's CRC when abCrcOk says so */
  unsigned char *abCrcOk;  /* nAlloc slots */
};

/* The CRC-32 of a chunk of zeros (a chunk never written, or freed by a truncate). */
static uint32_t zero_chunk_crc(void) {
  static uint32_t uCrc;
  static int bKnown = 0;
  if (!bKnown) {
    static const unsigned char aZero[BGS_CHUNK_SIZE];
    uCrc = bgs_crc32(aZero, BGS_CHUNK_SIZE);
    bKnown = 1;
  }
  return uCrc;
}

int bgs_image_new(bgs_image **ppImg) {
  bgs_image *p;
  if (ppImg == NULL) return BGS_MISUSE;
  p = calloc(1, sizeof(*p));
  *ppImg = p;
  return p ? BGS_OK : BGS_NOMEM;
}

void bgs_image_free(bgs_image *pImg) {
  uint32_t i;
  if (pImg == NULL) return;
  for (i = 0; i < pImg->nAlloc; i++) free(pImg->apChunk[i]);
  free(pImg->apChunk);
  free(pImg->abDirty);
  free(pImg->aDirty);
  free(pImg->aCrc);
  free(pImg->abCrcOk);
  free(pImg);
}

/* Makes room for chunk index iChunk (amortized doubling). */
static int image_reserve(bgs_image *p, uint32_t iChunk) {
  uint32_t nNew;
  unsigned char **apNew;
  unsigned char *abNew;
  uint32_t *aNew, *aCrcNew;
  if (iChunk < p->nAlloc) return BGS_OK;
  nNew = p->nAlloc ? p->nAlloc : 16;
  while (nNew <= iChunk) nNew *= 2;
  apNew = realloc(p->apChunk, nNew * sizeof(*apNew));
  if (apNew == NULL) return BGS_NOMEM;
  p->apChunk = apNew;
  abNew = realloc(p->abDirty, nNew);
  if (abNew == NULL) return BGS_NOMEM;
  p->abDirty = abNew;
  aNew = realloc(p->aDirty, nNew * sizeof(*aNew));
  if (aNew == NULL) return BGS_NOMEM;
  p->aDirty = aNew;
  aCrcNew = realloc(p->aCrc, nNew * sizeof(*aCrcNew));
  if (aCrcNew == NULL) return BGS_NOMEM;
  p->aCrc = aCrcNew;
  abNew = realloc(p->abCrcOk, nNew);
  if (abNew == NULL) return BGS_NOMEM;
  p->abCrcOk = abNew;
  memset(p->abCrcOk + p->nAlloc, 0, nNew - p->nAlloc);
  memset(p->apChunk + p->nAlloc, 0, (nNew - p->nAlloc) * sizeof(*apNew));
  memset(p->abDirty + p->nAlloc, 0, nNew - p->nAlloc);
  p->nAlloc = nNew;
  return BGS_OK;
}

static unsigned char *image_chunk(bgs_image *p, uint32_t iChunk) {
  if (image_reserve(p, iChunk) != BGS_OK) return NULL;
  if (p->apChunk[iChunk] == NULL) {
    p->apChunk[iChunk] = calloc(1, BGS_CHUNK_SIZE);
    p->aCrc[iChunk] = zero_chunk_crc();
    p->abCrcOk[iChunk] = 1;
  }
  return p->apChunk[iChunk];
}

static void image_mark(bgs_image *p, uint32_t iChunk) {
  if (!p->abDirty[iChunk]) {
    p->abDirty[iChunk] = 1;
    p->aDirty[p->nDirty++] = iChunk;
  }
}

int bgs_image_load(bgs_image *pImg, uint32_t iChunk, const void *pData, size_t nData,
                   uint32_t uCrc) {
  unsigned char *pChunk;
  if (pImg == NULL || (pData == NULL && nData > 0)) return BGS_MISUSE;
  if (nData > BGS_CHUNK_SIZE) return BGS_CORRUPT;
  if (bgs_crc32(pData, nData) != uCrc) return BGS_CORRUPT;
  pChunk = image_chunk(pImg, iChunk);
  if (pChunk == NULL) return BGS_NOMEM;
  memcpy(pChunk, pData, nData);
  memset(pChunk + nData, 0, BGS_CHUNK_SIZE - nData);
  /* uCrc covers nData bytes: it is the chunk's only when the chunk came whole. */
  pImg->aCrc[iChunk] = uCrc;
  pImg->abCrcOk[iChunk] = nData == BGS_CHUNK_SIZE;
  return BGS_OK;
}

int bgs_image_set_size(bgs_image *pImg, int64_t nSize) {
  if (pImg == NULL || nSize < 0) return BGS_MISUSE;
  pImg->nSize = nSize;
  return BGS_OK;
}

int64_t bgs__image_size(const bgs_image *p) { return p->nSize; }

void bgs__image_read(const bgs_image *p, int64_t iOff, void *pBuf, size_t n) {
  unsigned char *pOut = pBuf;
  while (n > 0) {
    uint32_t iChunk = (uint32_t)(iOff / BGS_CHUNK_SIZE);
    size_t iIn = (size_t)(iOff % BGS_CHUNK_SIZE);
    size_t nPart = BGS_CHUNK_SIZE - iIn;
    if (nPart > n) nPart = n;
    if (iChunk < p->nAlloc && p->apChunk[iChunk] != NULL) {
      memcpy(pOut, p->apChunk[iChunk] + iIn, nPart);
    } else {
      memset(pOut, 0, nPart);
    }
    pOut += nPart;
    iOff += (int64_t)nPart;
    n -= nPart;
  }
}

int bgs__image_write(bgs_image *p, int64_t iOff, const void *pBuf, size_t n) {
  const unsigned char *pIn = pBuf;
  int64_t iEnd = iOff + (int64_t)n;
  while (n > 0) {
    uint32_t iChunk = (uint32_t)(iOff / BGS_CHUNK_SIZE);
    size_t iIn = (size_t)(iOff % BGS_CHUNK_SIZE);
    size_t nPart = BGS_CHUNK_SIZE - iIn;
    unsigned char *pChunk;
    if (nPart > n) nPart = n;
    pChunk = image_chunk(p, iChunk);
    if (pChunk == NULL) return BGS_NOMEM;
    if (p->abCrcOk[iChunk] && !bgs__crc32_clmul()) {
      /* Copies only what changed: most of a page write is the page as it was. */
      p->aCrc[iChunk] ^=
          bgs__crc32_delta_copy(pChunk + iIn, pIn, nPart, BGS_CHUNK_SIZE - iIn - nPart);
    } else {
      /* With the carry-less multiply the take sums the whole chunk for less than the
         diff costs (crc32_clmul.c), and once however often it was written since. */
      memcpy(pChunk + iIn, pIn, nPart);
      p->abCrcOk[iChunk] = 0;
    }
    image_mark(p, iChunk);
    pIn += nPart;
    iOff += (int64_t)nPart;
    n -= nPart;
  }
  if (iEnd > p->nSize) {
    p->nSize = iEnd;
    p->bSizeChanged = 1;
  }
  return BGS_OK;
}

void bgs__image_truncate(bgs_image *p, int64_t nSize) {
  uint32_t nKeep = (uint32_t)((nSize + BGS_CHUNK_SIZE - 1) / BGS_CHUNK_SIZE);
  uint32_t nOld = (uint32_t)((p->nSize + BGS_CHUNK_SIZE - 1) / BGS_CHUNK_SIZE);
  uint32_t i;
  if (nSize >= p->nSize) return;
  for (i = nKeep; i < p->nAlloc; i++) {
    free(p->apChunk[i]);
    p->apChunk[i] = NULL;
    /* The host may still hold this chunk: if the file grows past it again before the
       next take, the take must carry it (as zeros), or a reload would bring the old bytes
       back. Chunks still past the end at the take are left out (bgs__image_take). */
    if (i < nOld) image_mark(p, i);
  }
  /* The tail of the new last chunk must read as zeros, as the host stores it. */
  if (nSize % BGS_CHUNK_SIZE != 0 && nKeep > 0 && nKeep - 1 < p->nAlloc &&
      p->apChunk[nKeep - 1] != NULL) {
    size_t iCut = (size_t)(nSize % BGS_CHUNK_SIZE);
    memset(p->apChunk[nKeep - 1] + iCut, 0, BGS_CHUNK_SIZE - iCut);
    p->abCrcOk[nKeep - 1] = 0;
    image_mark(p, nKeep - 1);
  }
  p->nSize = nSize;
  p->bSizeChanged = 1;
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

int bgs__image_take(bgs_image *p, unsigned char **ppBuf, size_t *pnBuf) {
  uint32_t nLive = (uint32_t)((p->nSize + BGS_CHUNK_SIZE - 1) / BGS_CHUNK_SIZE);
  uint32_t i, n = 0;
  size_t nBuf;
  unsigned char *pBuf, *pIdx, *pData;
  double rSize = (double)p->nSize;

  for (i = 0; i < p->nDirty; i++) {
    if (p->aDirty[i] < nLive) n++;
  }
  nBuf = 16 + (size_t)n * (8 + BGS_CHUNK_SIZE);
  pBuf = malloc(nBuf);
  if (pBuf == NULL) return BGS_NOMEM;
  put_u32(pBuf, BGS_CHUNK_SIZE);
  put_u32(pBuf + 4, n);
  memcpy(pBuf + 8, &rSize, 8); /* wasm32 and x86-64 are little-endian */
  pIdx = pBuf + 16;
  pData = pIdx + (size_t)n * 8;
  for (i = 0; i < p->nDirty; i++) {
    uint32_t iChunk = p->aDirty[i];
    p->abDirty[iChunk] = 0;
    if (iChunk >= nLive) continue;
    if (p->apChunk[iChunk] != NULL) {
      memcpy(pData, p->apChunk[iChunk], BGS_CHUNK_SIZE);
      if (!p->abCrcOk[iChunk]) {
        p->aCrc[iChunk] = bgs_crc32(pData, BGS_CHUNK_SIZE);
        p->abCrcOk[iChunk] = 1;
      }
      put_u32(pIdx + 4, p->aCrc[iChunk]);
    } else {
      memset(pData, 0, BGS_CHUNK_SIZE);
      put_u32(pIdx + 4, zero_chunk_crc());
    }
    put_u32(pIdx, iChunk);
    pIdx += 8;
    pData += BGS_CHUNK_SIZE;
  }
  p->nDirty = 0;
  p->bSizeChanged = 0;
  *ppBuf = pBuf;
  *pnBuf = nBuf;
  return BGS_OK;
}

int bgs__image_has_changes(const bgs_image *p) { return p->nDirty > 0 || p->bSizeChanged; }

/* Forgets pending changes: used right after open, when the loaded pages are durable. */
void bgs__image_forget_changes(bgs_image *p) {
  uint32_t i;
  for (i = 0; i < p->nDirty; i++) p->abDirty[p->aDirty[i]] = 0;
  p->nDirty = 0;
  p->bSizeChanged = 0;
}
