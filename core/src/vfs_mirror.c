/*
 * vfs_mirror.c -- the only SQLite VFS in bgsync: database files are bgs_images in
 * memory, and every write marks the chunks it touched so the host can persist exactly
 * what changed (see bgs_changes_take).
 *
 * SQLite is compiled with SQLITE_OS_OTHER, so this file also provides sqlite3_os_init:
 * SQLite can touch no file, clock or random source but what is here.
 *  - Only registered names open as databases (the engine registers its image before
 *    sqlite3_open); temp files stay in SQLite's memory.
 *  - There is no rollback journal (journal_mode=OFF): the image keeps what a journal
 *    would (image.c), and the engine returns it to its last commit when SQLite rolls a
 *    transaction back (engine.c). A journal copied every page a transaction changed
 *    before changing it, 4 KiB each, a tenth of an enqueue -> claim -> complete cycle.
 *    A journal asked for anyway cannot be opened.
 *  - Durability is the host's job: it writes the changed chunks atomically after a call
 *    has committed, so xSync has nothing to do and a torn image can never be stored.
 *  - The clock SQLite sees is the engine's injected `now` (bgs__vfs_set_now).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sqlite3.h"

typedef struct MirrorFile {
  sqlite3_file base; /* must be first: SQLite casts */
  bgs_image *pImg;   /* the database: borrowed from the registry; the engine owns it */
} MirrorFile;

typedef struct MirrorName {
  char *zName;
  bgs_image *pImg;
  struct MirrorName *pNext;
} MirrorName;

static MirrorName *g_pNames = NULL; /* registered images; one thread, see bgsync.h */
static bgs_time g_now = 0;          /* the time SQLite is told */

void bgs__vfs_set_now(bgs_time now) { g_now = now; }

int bgs__vfs_register(const char *zName, bgs_image *pImg) {
  MirrorName *p = calloc(1, sizeof(*p));
  if (p == NULL) return BGS_NOMEM;
  p->zName = malloc(strlen(zName) + 1);
  if (p->zName == NULL) {
    free(p);
    return BGS_NOMEM;
  }
  strcpy(p->zName, zName);
  p->pImg = pImg;
  p->pNext = g_pNames;
  g_pNames = p;
  return BGS_OK;
}

void bgs__vfs_unregister(const char *zName) {
  MirrorName **pp = &g_pNames;
  while (*pp != NULL) {
    if (strcmp((*pp)->zName, zName) == 0) {
      MirrorName *pDead = *pp;
      *pp = pDead->pNext;
      free(pDead->zName);
      free(pDead);
      return;
    }
    pp = &(*pp)->pNext;
  }
}

static bgs_image *mirror_lookup(const char *zName) {
  MirrorName *p;
  if (zName == NULL) return NULL;
  for (p = g_pNames; p != NULL; p = p->pNext) {
    if (strcmp(p->zName, zName) == 0) return p->pImg;
  }
  return NULL;
}

/* Forward declarations: file methods. */
static int mirrorClose(sqlite3_file *);
static int mirrorRead(sqlite3_file *, void *, int iAmt, sqlite3_int64 iOfst);
static int mirrorWrite(sqlite3_file *, const void *, int iAmt, sqlite3_int64 iOfst);
static int mirrorTruncate(sqlite3_file *, sqlite3_int64 size);
static int mirrorSync(sqlite3_file *, int flags);
static int mirrorFileSize(sqlite3_file *, sqlite3_int64 *pSize);
static int mirrorLock(sqlite3_file *, int);
static int mirrorCheckReservedLock(sqlite3_file *, int *pResOut);
static int mirrorFileControl(sqlite3_file *, int op, void *pArg);
static int mirrorSectorSize(sqlite3_file *);
static int mirrorDeviceCharacteristics(sqlite3_file *);

/* Forward declarations: VFS methods. */
static int mirrorOpen(sqlite3_vfs *, sqlite3_filename zName, sqlite3_file *, int flags, int *pOutFlags);
static int mirrorDelete(sqlite3_vfs *, const char *zName, int syncDir);
static int mirrorAccess(sqlite3_vfs *, const char *zName, int flags, int *pResOut);
static int mirrorFullPathname(sqlite3_vfs *, const char *zName, int nOut, char *zOut);
static int mirrorRandomness(sqlite3_vfs *, int nByte, char *zOut);
static int mirrorSleep(sqlite3_vfs *, int microseconds);
static int mirrorCurrentTime(sqlite3_vfs *, double *);
static int mirrorGetLastError(sqlite3_vfs *, int, char *);
static int mirrorCurrentTimeInt64(sqlite3_vfs *, sqlite3_int64 *);

static const sqlite3_io_methods mirror_io_methods = {
    1,                           /* iVersion: no shared memory (no WAL), no mmap */
    mirrorClose,                 /* xClose: the image outlives the file */
    mirrorRead,                  /* xRead: zero-fills past the end, as SQLite expects */
    mirrorWrite,                 /* xWrite: marks touched chunks dirty */
    mirrorTruncate,              /* xTruncate */
    mirrorSync,                  /* xSync: no-op, the host persists after commit */
    mirrorFileSize,              /* xFileSize */
    mirrorLock,                  /* xLock: one connection per image, nothing to lock */
    mirrorLock,                  /* xUnlock */
    mirrorCheckReservedLock,     /* xCheckReservedLock: never locked by others */
    mirrorFileControl,           /* xFileControl: nothing special */
    mirrorSectorSize,            /* xSectorSize: one chunk */
    mirrorDeviceCharacteristics, /* xDeviceCharacteristics: memory is atomic */
    0, 0, 0, 0, 0, 0             /* xShm*, xFetch, xUnfetch: not provided */
};

static sqlite3_vfs mirror_vfs = {
    2,                      /* iVersion */
    sizeof(MirrorFile),     /* szOsFile */
    512,                    /* mxPathname */
    0,                      /* pNext */
    "bgs-mirror",           /* zName */
    0,                      /* pAppData */
    mirrorOpen,             /* xOpen: registered images only */
    mirrorDelete,           /* xDelete: nothing to delete */
    mirrorAccess,           /* xAccess: registered names exist, nothing else */
    mirrorFullPathname,     /* xFullPathname: names are already absolute */
    0, 0, 0, 0,             /* xDlOpen, xDlError, xDlSym, xDlClose: no extensions */
    mirrorRandomness,       /* xRandomness: deterministic; the engine seeds its own */
    mirrorSleep,            /* xSleep: nothing to wait for */
    mirrorCurrentTime,      /* xCurrentTime: the injected clock */
    mirrorGetLastError,     /* xGetLastError */
    mirrorCurrentTimeInt64, /* xCurrentTimeInt64: the injected clock */
    0, 0, 0                 /* xSetSystemCall, xGetSystemCall, xNextSystemCall */
};

static int mirrorClose(sqlite3_file *pFile) {
  ((MirrorFile *)pFile)->pImg = NULL;
  return SQLITE_OK;
}

static int mirrorRead(sqlite3_file *pFile, void *pBuf, int iAmt, sqlite3_int64 iOfst) {
  bgs_image *pImg = ((MirrorFile *)pFile)->pImg;
  int64_t nSize = bgs__image_size(pImg);
  if (iOfst + iAmt > nSize) {
    int64_t nHave = nSize > iOfst ? nSize - iOfst : 0;
    memset(pBuf, 0, (size_t)iAmt);
    if (nHave > 0) bgs__image_read(pImg, iOfst, pBuf, (size_t)nHave);
    return SQLITE_IOERR_SHORT_READ;
  }
  bgs__image_read(pImg, iOfst, pBuf, (size_t)iAmt);
  return SQLITE_OK;
}

static int mirrorWrite(sqlite3_file *pFile, const void *pBuf, int iAmt, sqlite3_int64 iOfst) {
  int rc = bgs__image_write(((MirrorFile *)pFile)->pImg, iOfst, pBuf, (size_t)iAmt);
  return rc == BGS_OK ? SQLITE_OK : SQLITE_IOERR_NOMEM;
}

static int mirrorTruncate(sqlite3_file *pFile, sqlite3_int64 size) {
  int rc = bgs__image_truncate(((MirrorFile *)pFile)->pImg, size);
  return rc == BGS_OK ? SQLITE_OK : SQLITE_IOERR_NOMEM;
}

static int mirrorSync(sqlite3_file *pFile, int flags) {
  (void)pFile;
  (void)flags;
  return SQLITE_OK;
}

static int mirrorFileSize(sqlite3_file *pFile, sqlite3_int64 *pSize) {
  *pSize = bgs__image_size(((MirrorFile *)pFile)->pImg);
  return SQLITE_OK;
}

static int mirrorLock(sqlite3_file *pFile, int eLock) {
  (void)pFile;
  (void)eLock;
  return SQLITE_OK;
}

static int mirrorCheckReservedLock(sqlite3_file *pFile, int *pResOut) {
  (void)pFile;
  *pResOut = 0;
  return SQLITE_OK;
}

static int mirrorFileControl(sqlite3_file *pFile, int op, void *pArg) {
  (void)pFile;
  (void)op;
  (void)pArg;
  return SQLITE_NOTFOUND;
}

static int mirrorSectorSize(sqlite3_file *pFile) {
  (void)pFile;
  return BGS_CHUNK_SIZE;
}

static int mirrorDeviceCharacteristics(sqlite3_file *pFile) {
  (void)pFile;
  return SQLITE_IOCAP_ATOMIC | SQLITE_IOCAP_SAFE_APPEND | SQLITE_IOCAP_SEQUENTIAL |
         SQLITE_IOCAP_POWERSAFE_OVERWRITE;
}

static int mirrorOpen(sqlite3_vfs *pVfs, sqlite3_filename zName, sqlite3_file *pFile,
                      int flags, int *pOutFlags) {
  MirrorFile *p = (MirrorFile *)pFile;
  bgs_image *pImg = (flags & SQLITE_OPEN_MAIN_DB) ? mirror_lookup(zName) : NULL;
  (void)pVfs;
  memset(p, 0, sizeof(*p));
  if (pImg == NULL) return SQLITE_CANTOPEN;
  p->base.pMethods = &mirror_io_methods;
  p->pImg = pImg;
  if (pOutFlags) *pOutFlags = flags;
  return SQLITE_OK;
}

static int mirrorDelete(sqlite3_vfs *pVfs, const char *zName, int syncDir) {
  (void)pVfs;
  (void)zName;
  (void)syncDir;
  return SQLITE_OK;
}

static int mirrorAccess(sqlite3_vfs *pVfs, const char *zName, int flags, int *pResOut) {
  (void)pVfs;
  (void)flags;
  *pResOut = mirror_lookup(zName) != NULL;
  return SQLITE_OK;
}

static int mirrorFullPathname(sqlite3_vfs *pVfs, const char *zName, int nOut, char *zOut) {
  (void)pVfs;
  sqlite3_snprintf(nOut, zOut, "%s", zName);
  return SQLITE_OK;
}

static int mirrorRandomness(sqlite3_vfs *pVfs, int nByte, char *zOut) {
  (void)pVfs;
  memset(zOut, 0, (size_t)nByte);
  return nByte;
}

static int mirrorSleep(sqlite3_vfs *pVfs, int microseconds) {
  (void)pVfs;
  return microseconds;
}

static int mirrorCurrentTimeInt64(sqlite3_vfs *pVfs, sqlite3_int64 *piNow) {
  (void)pVfs;
  /* Julian day in milliseconds, as SQLite wants it. */
  *piNow = (sqlite3_int64)210866760000000LL + g_now;
  return SQLITE_OK;
}

static int mirrorCurrentTime(sqlite3_vfs *pVfs, double *prNow) {
  sqlite3_int64 i;
  mirrorCurrentTimeInt64(pVfs, &i);
  *prNow = (double)i / 86400000.0;
  return SQLITE_OK;
}

static int mirrorGetLastError(sqlite3_vfs *pVfs, int nBuf, char *zBuf) {
  (void)pVfs;
  if (nBuf > 0) zBuf[0] = 0;
  return 0;
}

int sqlite3_os_init(void) { return sqlite3_vfs_register(&mirror_vfs, 1); }

int sqlite3_os_end(void) { return SQLITE_OK; }
