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
 *    write updates it from the bytes it changed (bgs__crc32_delta), so the take does not
 *    sum whole chunks -- unless the CPU sums whole chunks for less (bgs__crc32_clmul):
 *    then a write leaves the CRC unknown. Chunks whose CRC is unknown (written so, a
 *    short chunk loaded, a truncated tail) are summed at the take.
 *
 * The image is also SQLite's rollback journal (the engine runs journal_mode=OFF): the
 * first write to a chunk after a commit point (bgs__image_commit) puts the new bytes in
 * a buffer of their own and keeps the old buffer in the undo log, so bgs__image_rollback
 * can put back the image as it was at that point. A page write is a whole chunk, so
 * keeping the old page costs a pointer, where a journal copied 4 KiB of every page a
 * transaction changed before it changed it (and the page cache copied it back on a
 * rollback). abUndo[i] != 0 when chunk i has its record in aUndo.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* A chunk as it was at the last commit point. */
typedef struct UndoRecord {
  unsigned char *pOld; /* its buffer then (NULL: zeros), owned by the record */
  uint32_t iChunk;
  uint32_t uCrc;       /* aCrc and abCrcOk then */
  unsigned char bCrcOk;
} UndoRecord;

/* Spare buffers kept over a commit: a cycle's transactions write a few chunks each; a
   large transaction's buffers beyond these go back to the allocator. */
#define BGS__SPARE_MAX 32

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
  /* The undo log since the last commit point. */
  UndoRecord *aUndo;       /* nUndo records of nUndoAlloc */
  uint32_t nUndo, nUndoAlloc;
  unsigned char *abUndo;   /* nAlloc slots: chunk i is in aUndo */
  int64_t nSizeCommitted;  /* nSize at the last commit point */
  /* Spare chunk buffers (a list through their first bytes): a commit frees as many old
     buffers as the next transaction's writes need, so they are kept for those. */
  void *pSpare;
  uint32_t nSpare;
  bgs_chunk_view *aView; /* the last bgs__image_view's list, nViewAlloc long */
  uint32_t nViewAlloc;
  int nFailAlloc;        /* tests: the nFailAlloc-th buffer asked for fails (0: none) */
};

static const unsigned char g_aZero[BGS_CHUNK_SIZE]; /* a chunk never written reads so */

/* The CRC-32 of a chunk of zeros (a chunk never written, or freed by a truncate). */
static uint32_t zero_chunk_crc(void) {
  static uint32_t uCrc;
  static int bKnown = 0;
  if (!bKnown) {
    uCrc = bgs_crc32(g_aZero, BGS_CHUNK_SIZE);
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
  bgs__image_commit(pImg); /* frees the old buffers the undo log holds */
  free(pImg->aUndo);
  free(pImg->abUndo);
  free(pImg->aView);
  while (pImg->pSpare != NULL) {
    void *pNext;
    memcpy(&pNext, pImg->pSpare, sizeof(pNext));
    free(pImg->pSpare);
    pImg->pSpare = pNext;
  }
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
  abNew = realloc(p->abUndo, nNew);
  if (abNew == NULL) return BGS_NOMEM;
  p->abUndo = abNew;
  memset(p->abUndo + p->nAlloc, 0, nNew - p->nAlloc);
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
  pImg->nSizeCommitted = nSize;
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

/* A buffer for a chunk's new bytes: a spare one, or a new one (uninitialized). */
static unsigned char *chunk_alloc(bgs_image *p) {
  unsigned char *pBuf = p->pSpare;
  if (p->nFailAlloc > 0 && --p->nFailAlloc == 0) return NULL;
  if (pBuf == NULL) return malloc(BGS_CHUNK_SIZE);
  memcpy(&p->pSpare, pBuf, sizeof(p->pSpare));
  p->nSpare--;
  return pBuf;
}

static void chunk_release(bgs_image *p, unsigned char *pBuf) {
  if (pBuf == NULL) return;
  if (p->nSpare >= BGS__SPARE_MAX) {
    free(pBuf);
    return;
  }
  memcpy(pBuf, &p->pSpare, sizeof(p->pSpare));
  p->pSpare = pBuf;
  p->nSpare++;
}

/* Room for nMore more undo records. */
static int undo_reserve(bgs_image *p, uint32_t nMore) {
  uint32_t nNew = p->nUndoAlloc ? p->nUndoAlloc : 16;
  UndoRecord *aNew;
  if (p->nUndo + nMore <= p->nUndoAlloc) return BGS_OK;
  while (nNew < p->nUndo + nMore) nNew *= 2;
  aNew = realloc(p->aUndo, nNew * sizeof(*aNew));
  if (aNew == NULL) return BGS_NOMEM;
  p->aUndo = aNew;
  p->nUndoAlloc = nNew;
  return BGS_OK;
}

/* Puts chunk iChunk (reserved, not yet in the undo log) in the undo log with its buffer,
   and gives it pNew (NULL: none, the chunk reads as zeros). */
static void undo_record(bgs_image *p, uint32_t iChunk, unsigned char *pNew) {
  UndoRecord *r = &p->aUndo[p->nUndo++];
  r->pOld = p->apChunk[iChunk];
  r->iChunk = iChunk;
  r->uCrc = p->aCrc[iChunk];
  r->bCrcOk = p->abCrcOk[iChunk];
  p->abUndo[iChunk] = 1;
  p->apChunk[iChunk] = pNew;
  if (r->pOld == NULL) {
    p->aCrc[iChunk] = zero_chunk_crc(); /* what the new buffer is given below */
    p->abCrcOk[iChunk] = 1;
  }
}

/* The buffer that a write of nPart bytes at iIn changes in chunk iChunk, and in *ppBefore
   the chunk's bytes before the write (for the CRC delta). The first change since the
   commit point moves the chunk to a new buffer and keeps the old one for a rollback; a
   whole-chunk write needs none of the old bytes in it. NULL when memory is short. */
static unsigned char *chunk_for_write(bgs_image *p, uint32_t iChunk, size_t nPart,
                                      const unsigned char **ppBefore) {
  unsigned char *pNew;
  if (image_reserve(p, iChunk) != BGS_OK) return NULL;
  if (p->abUndo[iChunk]) {
    /* Changed since the commit point already: the buffer is this transaction's. */
    *ppBefore = image_chunk(p, iChunk);
    return (unsigned char *)*ppBefore;
  }
  if (undo_reserve(p, 1) != BGS_OK) return NULL;
  pNew = chunk_alloc(p);
  if (pNew == NULL) return NULL;
  undo_record(p, iChunk, pNew);
  *ppBefore = p->aUndo[p->nUndo - 1].pOld ? p->aUndo[p->nUndo - 1].pOld : g_aZero;
  if (nPart < BGS_CHUNK_SIZE) {
    memcpy(pNew, *ppBefore, BGS_CHUNK_SIZE);
    *ppBefore = pNew;
  }
  return pNew;
}

int bgs__image_write(bgs_image *p, int64_t iOff, const void *pBuf, size_t n) {
  const unsigned char *pIn = pBuf;
  int64_t iEnd = iOff + (int64_t)n;
  while (n > 0) {
    uint32_t iChunk = (uint32_t)(iOff / BGS_CHUNK_SIZE);
    size_t iIn = (size_t)(iOff % BGS_CHUNK_SIZE);
    size_t nPart = BGS_CHUNK_SIZE - iIn;
    const unsigned char *pBefore;
    unsigned char *pChunk;
    if (nPart > n) nPart = n;
    pChunk = chunk_for_write(p, iChunk, nPart, &pBefore);
    if (pChunk == NULL) return BGS_NOMEM;
    if (p->abCrcOk[iChunk] && !bgs__crc32_clmul()) {
      /* The CRC from what changed: most of a page write is the page as it was. In place,
         only the changed blocks are copied. */
      size_t nAfter = BGS_CHUNK_SIZE - iIn - nPart;
      if (pBefore == pChunk) {
        p->aCrc[iChunk] ^= bgs__crc32_delta_copy(pChunk + iIn, pIn, nPart, nAfter);
      } else {
        p->aCrc[iChunk] ^= bgs__crc32_delta(pBefore + iIn, pIn, nPart, nAfter);
        memcpy(pChunk + iIn, pIn, nPart);
      }
    } else if (nPart == BGS_CHUNK_SIZE && !p->abDirty[iChunk]) {
      /* A whole page, the first write since the last take (SQLite writes each page once
         a commit, and the glue takes after every call): summed on the way in, the copy
         riding along the fold, so the take reads nothing again. */
      p->aCrc[iChunk] = bgs__crc32_copy(pChunk, pIn, nPart);
      p->abCrcOk[iChunk] = 1;
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

int bgs__image_truncate(bgs_image *p, int64_t nSize) {
  uint32_t nKeep = (uint32_t)((nSize + BGS_CHUNK_SIZE - 1) / BGS_CHUNK_SIZE);
  uint32_t nOld = (uint32_t)((p->nSize + BGS_CHUNK_SIZE - 1) / BGS_CHUNK_SIZE);
  uint32_t i;
  if (nSize >= p->nSize) return BGS_OK;
  /* Chunks at or past nOld are all NULL (a truncate freed them, or none was written). */
  if (nOld > p->nAlloc) nOld = p->nAlloc;
  if (undo_reserve(p, nOld > nKeep ? nOld - nKeep + 1 : 1) != BGS_OK) return BGS_NOMEM;
  /* The tail of the new last chunk must read as zeros, as the host stores it. */
  if (nSize % BGS_CHUNK_SIZE != 0 && nKeep - 1 < p->nAlloc && p->apChunk[nKeep - 1] != NULL) {
    size_t iCut = (size_t)(nSize % BGS_CHUNK_SIZE);
    const unsigned char *pBefore;
    unsigned char *pChunk = chunk_for_write(p, nKeep - 1, iCut, &pBefore);
    if (pChunk == NULL) return BGS_NOMEM;
    memset(pChunk + iCut, 0, BGS_CHUNK_SIZE - iCut);
    p->abCrcOk[nKeep - 1] = 0;
    image_mark(p, nKeep - 1);
  }
  for (i = nKeep; i < nOld; i++) {
    if (p->apChunk[i] == NULL) continue;
    if (p->abUndo[i]) {
      chunk_release(p, p->apChunk[i]);
      p->apChunk[i] = NULL;
    } else {
      undo_record(p, i, NULL); /* the old buffer goes to the undo log */
    }
    /* The host may still hold this chunk: if the file grows past it again before the
       next take, the take must carry it (as zeros), or a reload would bring the old bytes
       back. Chunks still past the end at the take are left out (bgs__image_take). */
    image_mark(p, i);
  }
  p->nSize = nSize;
  p->bSizeChanged = 1;
  return BGS_OK;
}

void bgs__image_fail_alloc(bgs_image *p, int n) { p->nFailAlloc = n; }

void bgs__image_commit(bgs_image *p) {
  uint32_t i;
  for (i = 0; i < p->nUndo; i++) {
    p->abUndo[p->aUndo[i].iChunk] = 0;
    chunk_release(p, p->aUndo[i].pOld);
  }
  p->nUndo = 0;
  p->nSizeCommitted = p->nSize;
}

void bgs__image_rollback(bgs_image *p) {
  uint32_t i;
  for (i = 0; i < p->nUndo; i++) {
    const UndoRecord *r = &p->aUndo[i];
    chunk_release(p, p->apChunk[r->iChunk]);
    p->apChunk[r->iChunk] = r->pOld;
    p->aCrc[r->iChunk] = r->uCrc;
    p->abCrcOk[r->iChunk] = r->bCrcOk;
    p->abUndo[r->iChunk] = 0;
    /* Marked again: a take since the commit point may have handed the host the bytes
       that go now (the engine takes only between calls, but the image does not know). */
    image_mark(p, r->iChunk);
  }
  p->nUndo = 0;
  if (p->nSize != p->nSizeCommitted) {
    p->nSize = p->nSizeCommitted;
    p->bSizeChanged = 1;
  }
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

int bgs__image_view(bgs_image *p, const bgs_chunk_view **paView, uint32_t *pnView) {
  uint32_t nLive = (uint32_t)((p->nSize + BGS_CHUNK_SIZE - 1) / BGS_CHUNK_SIZE);
  uint32_t i, n = 0;
  *paView = NULL;
  *pnView = 0;
  if (p->nDirty > p->nViewAlloc) {
    bgs_chunk_view *aNew = realloc(p->aView, p->nDirty * sizeof(*aNew));
    if (aNew == NULL) return BGS_NOMEM; /* nothing taken: the next take has them all */
    p->aView = aNew;
    p->nViewAlloc = p->nDirty;
  }
  for (i = 0; i < p->nDirty; i++) {
    uint32_t iChunk = p->aDirty[i];
    bgs_chunk_view *v = &p->aView[n];
    p->abDirty[iChunk] = 0;
    if (iChunk >= nLive) continue;
    v->iChunk = iChunk;
    if (p->apChunk[iChunk] != NULL) {
      if (!p->abCrcOk[iChunk]) {
        p->aCrc[iChunk] = bgs_crc32(p->apChunk[iChunk], BGS_CHUNK_SIZE);
        p->abCrcOk[iChunk] = 1;
      }
      v->uCrc = p->aCrc[iChunk];
      v->pData = p->apChunk[iChunk];
    } else {
      v->uCrc = zero_chunk_crc();
      v->pData = g_aZero;
    }
    n++;
  }
  p->nDirty = 0;
  p->bSizeChanged = 0;
  *paView = p->aView;
  *pnView = n;
  return BGS_OK;
}

int bgs__image_take(bgs_image *p, unsigned char **ppBuf, size_t *pnBuf) {
  const bgs_chunk_view *aView;
  uint32_t i, n;
  size_t nBuf;
  unsigned char *pBuf, *pIdx, *pData;
  double rSize = (double)p->nSize;
  /* The buffer first: without memory, nothing counts as taken. */
  uint32_t nMost = p->nDirty;
  pBuf = malloc(16 + (size_t)nMost * (8 + BGS_CHUNK_SIZE));
  if (pBuf == NULL || bgs__image_view(p, &aView, &n) != BGS_OK) {
    free(pBuf);
    return BGS_NOMEM;
  }
  nBuf = 16 + (size_t)n * (8 + BGS_CHUNK_SIZE);
  put_u32(pBuf, BGS_CHUNK_SIZE);
  put_u32(pBuf + 4, n);
  memcpy(pBuf + 8, &rSize, 8); /* wasm32 and x86-64 are little-endian */
  pIdx = pBuf + 16;
  pData = pIdx + (size_t)n * 8;
  for (i = 0; i < n; i++) {
    put_u32(pIdx, aView[i].iChunk);
    put_u32(pIdx + 4, aView[i].uCrc);
    memcpy(pData, aView[i].pData, BGS_CHUNK_SIZE);
    pIdx += 8;
    pData += BGS_CHUNK_SIZE;
  }
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
