/* test_storage.c -- the image and its changes: what the host stores reopens the same. */
#include <unistd.h>

#include "check.h"
#include "support.h"
#include "internal.h"

TEST(test_storage_new_engine_hands_over_its_schema) {
  bgs_engine *pEng = engine_new();
  host_store s;
  store_init(&s);
  store_flush(pEng, &s);
  CHECK(s.nSize > 0);
  CHECK_EQ_I64(s.nSize % BGS_CHUNK_SIZE, 0);
  CHECK_EQ_I64(s.nFlush, 1);
  /* Nothing changed since: the next take is empty. */
  store_flush(pEng, &s);
  CHECK_EQ_I64(s.nFlush, 1);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_storage_reopen_from_flushed_changes_keeps_items) {
  bgs_engine *pEng = engine_new();
  host_store s;
  int64_t aId[8];
  int i;
  store_init(&s);
  for (i = 0; i < 200; i++) enqueue_simple(pEng, "item", 1000 + i);
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK_EQ_I64(count_state(pEng, "pending", 5000), 200);
  CHECK_EQ_I64(claim_ids(pEng, 8, 5000, aId, NULL), 8);
  CHECK_EQ_I64(aId[0], 1);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_storage_unflushed_changes_are_not_in_the_store) {
  bgs_engine *pEng = engine_new();
  host_store s;
  store_init(&s);
  enqueue_simple(pEng, "kept", 1000);
  store_flush(pEng, &s);
  enqueue_simple(pEng, "lost", 1001); /* its flush "failed": never applied */
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK_EQ_I64(count_state(pEng, "pending", 5000), 1);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_storage_only_changed_chunks_are_handed_over) {
  bgs_engine *pEng = engine_new();
  host_store s;
  unsigned char *pBuf;
  size_t nBuf;
  int i;
  store_init(&s);
  for (i = 0; i < 500; i++) enqueue_simple(pEng, "bulk", 1000);
  store_flush(pEng, &s);
  enqueue_simple(pEng, "one", 2000);
  CHECK_OK(bgs_changes_take(pEng, &pBuf, &nBuf));
  /* One small insert touches a handful of pages, not the whole file. */
  CHECK(pBuf[4] + (pBuf[5] << 8) < 8);
  CHECK((int64_t)nBuf < s.nSize / 4);
  bgs_free(pBuf);
  bgs_close(pEng);
  store_free(&s);
}

TEST(test_storage_damaged_chunk_is_detected_at_load) {
  bgs_engine *pEng = engine_new();
  host_store s;
  bgs_image *pImg;
  store_init(&s);
  enqueue_simple(pEng, "a", 1000);
  store_flush(pEng, &s);
  bgs_close(pEng);
  s.apChunk[1][100] ^= 0x5A;
  CHECK_OK(bgs_image_new(&pImg));
  CHECK_OK(bgs_image_load(pImg, 0, s.apChunk[0], BGS_CHUNK_SIZE, s.aCrc[0]));
  CHECK_RC(bgs_image_load(pImg, 1, s.apChunk[1], BGS_CHUNK_SIZE, s.aCrc[1]), BGS_CORRUPT);
  bgs_image_free(pImg);
  store_free(&s);
}

TEST(test_storage_garbage_image_is_corrupt_not_empty) {
  bgs_image *pImg;
  bgs_engine *pEng = (bgs_engine *)1;
  unsigned char aJunk[BGS_CHUNK_SIZE];
  memset(aJunk, 0xAB, sizeof(aJunk));
  CHECK_OK(bgs_image_new(&pImg));
  CHECK_OK(bgs_image_load(pImg, 0, aJunk, sizeof(aJunk), bgs_crc32(aJunk, sizeof(aJunk))));
  CHECK_OK(bgs_image_set_size(pImg, sizeof(aJunk)));
  CHECK_RC(bgs_open(pImg, NULL, 1, &pEng), BGS_CORRUPT);
  CHECK(pEng == NULL);
}

TEST(test_storage_file_backend_round_trips) {
  bgs_engine *pEng = engine_new();
  host_store s, t;
  char zPath[] = "/tmp/bgs-test-XXXXXX";
  int fd = mkstemp(zPath);
  CHECK(fd >= 0);
  close(fd);
  store_init(&s);
  enqueue_simple(pEng, "a", 1000);
  enqueue_simple(pEng, "b", 1000);
  store_flush(pEng, &s);
  bgs_close(pEng);
  store_save_file(&s, zPath);
  store_load_file(&t, zPath);
  unlink(zPath);
  pEng = engine_reopen(&t);
  CHECK_EQ_I64(count_state(pEng, "pending", 5000), 2);
  bgs_close(pEng);
  store_free(&s);
  store_free(&t);
}

TEST(test_storage_errors_have_names_and_messages) {
  int rc;
  for (rc = 0; bgs_errname(rc) != NULL; rc++) {
    CHECK(strlen(bgs_errname(rc)) > 0);
    CHECK(strcmp(bgs_errstr(rc), "unknown result code") != 0);
  }
  /* Contiguous from 0, and codes already given out keep their values. */
  CHECK(rc > BGS_NO_BATCH);
  CHECK_EQ_I64(BGS_CORRUPT, 16);
  CHECK_EQ_I64(BGS_NO_BATCH, 17);
  CHECK_STR(bgs_errname(BGS_QUEUE_FULL), "queue-full");
}

/* The bit-by-bit definition of CRC-32 (IEEE), to judge the fast one against. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  size_t i;
  int k;
  for (i = 0; i < n; i++) {
    c ^= p[i];
    for (k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

/* Stored chunks carry this checksum and sw/storage/LogStore.js computes the same one:
   it must never change. */
TEST(test_storage_crc32_is_ieee_at_every_length_and_alignment) {
  static unsigned char aBuf[BGS_CHUNK_SIZE + 16];
  size_t iOff, n;
  uint32_t x = 12345;
  int bClmul;
  for (n = 0; n < sizeof(aBuf); n++) {
    x = x * 1103515245u + 12345u;
    aBuf[n] = (unsigned char)(x >> 16);
  }
  /* Every path the CPU has (crc32_clmul.c: 128-bit folds from 64 bytes, 256-bit ones from
     256 bytes, in 16-byte blocks; the tables the rest), the table path again where not. */
  for (bClmul = 0; bClmul < 3; bClmul++) {
    bgs__crc32_clmul_allow(bClmul);
    CHECK_EQ_I64(bgs_crc32("123456789", 9), 0xCBF43926u); /* the standard check value */
    CHECK_EQ_I64(bgs_crc32("", 0), 0);
    for (iOff = 0; iOff < 16; iOff++) {
      for (n = 0; n <= 300; n++) {
        CHECK_EQ_I64(bgs_crc32(aBuf + iOff, n), crc32_bitwise(aBuf + iOff, n));
      }
    }
    for (n = 300; n <= 1100; n += 7) {
      CHECK_EQ_I64(bgs_crc32(aBuf + n % 16, n), crc32_bitwise(aBuf + n % 16, n));
    }
    for (n = BGS_CHUNK_SIZE - 17; n <= BGS_CHUNK_SIZE; n++) {
      CHECK_EQ_I64(bgs_crc32(aBuf, n), crc32_bitwise(aBuf, n));
      CHECK_EQ_I64(bgs_crc32(aBuf + 3, n), crc32_bitwise(aBuf + 3, n));
    }
  }
  bgs__crc32_clmul_allow(2);
}

/* A whole-page write sums the page while copying it (image.c): the same sum as
   bgs_crc32, every byte copied and none beyond, on every path and alignment. */
TEST(test_storage_crc32_copy_sums_what_it_copies) {
  static unsigned char aSrc[BGS_CHUNK_SIZE + 16], aDst[BGS_CHUNK_SIZE + 48];
  size_t iOff, n;
  uint32_t x = 777;
  int bClmul;
  for (n = 0; n < sizeof(aSrc); n++) {
    x = x * 1103515245u + 12345u;
    aSrc[n] = (unsigned char)(x >> 16);
  }
  for (bClmul = 0; bClmul < 3; bClmul++) {
    bgs__crc32_clmul_allow(bClmul);
    for (n = 0; n <= BGS_CHUNK_SIZE; n += n < 300 ? 1 : n < 1100 ? 7 : 499) {
      iOff = n % 16;
      memset(aDst, 0xEE, sizeof(aDst));
      CHECK_EQ_I64(bgs__crc32_copy(aDst + 16 + iOff, aSrc + iOff, n),
                   crc32_bitwise(aSrc + iOff, n));
      CHECK(memcmp(aDst + 16 + iOff, aSrc + iOff, n) == 0);
      CHECK(aDst[15 + iOff] == 0xEE && aDst[16 + iOff + n] == 0xEE);
    }
    memset(aDst, 0, sizeof(aDst));
    CHECK_EQ_I64(bgs__crc32_copy(aDst + 3, aSrc + 5, BGS_CHUNK_SIZE),
                 crc32_bitwise(aSrc + 5, BGS_CHUNK_SIZE));
    CHECK(memcmp(aDst + 3, aSrc + 5, BGS_CHUNK_SIZE) == 0);
  }
  bgs__crc32_clmul_allow(2);
}

/* A write updates its chunk's checksum from the bytes it changed (image.c): the update
   must give the checksum of the new bytes for changes anywhere, of any extent. */
TEST(test_storage_crc32_update_from_changed_bytes_matches_a_full_sum) {
  static unsigned char aOld[BGS_CHUNK_SIZE], aNew[BGS_CHUNK_SIZE];
  uint32_t x = 777;
  int iCase;
  for (iCase = 0; iCase < 400; iCase++) {
    size_t iOff, n, i, nChanges;
    for (i = 0; i < BGS_CHUNK_SIZE; i++) {
      x = x * 1103515245u + 12345u;
      aOld[i] = (unsigned char)(x >> 16);
    }
    memcpy(aNew, aOld, sizeof(aNew));
    x = x * 1103515245u + 12345u;
    iOff = (x >> 8) % BGS_CHUNK_SIZE;
    x = x * 1103515245u + 12345u;
    n = (x >> 8) % (BGS_CHUNK_SIZE - iOff + 1);
    /* From one changed byte to every byte, scattered or in runs. */
    nChanges = iCase % 4 == 0 ? n : (size_t)(iCase % 13);
    for (i = 0; i < nChanges && n > 0; i++) {
      size_t j;
      x = x * 1103515245u + 12345u;
      j = iOff + (iCase % 4 == 0 ? i : (x >> 8) % n);
      aNew[j] ^= (unsigned char)(1 + (x >> 24) % 255);
    }
    CHECK_EQ_I64(bgs_crc32(aOld, BGS_CHUNK_SIZE) ^
                     bgs__crc32_delta(aOld + iOff, aNew + iOff, n, BGS_CHUNK_SIZE - iOff - n),
                 bgs_crc32(aNew, BGS_CHUNK_SIZE));
  }
}

/* The update sums a changed block from its first to its last changed word: changes at
   the edges of words and blocks, and only in the bytes after the last whole word of a
   write, must still give the full sum. */
TEST(test_storage_crc32_update_at_word_and_block_edges) {
  static unsigned char aOld[BGS_CHUNK_SIZE], aNew[BGS_CHUNK_SIZE], aCopy[BGS_CHUNK_SIZE];
  static const size_t aOff[] = {0, 1, 7, 8, 255, 256, 257, 1000, 4095};
  static const size_t aLen[] = {1, 7, 9, 255, 256, 257, 263, 265, 521, 3000};
  size_t i, a, b, k;
  for (i = 0; i < BGS_CHUNK_SIZE; i++) aOld[i] = (unsigned char)(i * 7 + 3);
  for (a = 0; a < sizeof(aOff) / sizeof(aOff[0]); a++) {
    for (b = 0; b < sizeof(aLen) / sizeof(aLen[0]); b++) {
      size_t iOff = aOff[a], n = aLen[b];
      if (iOff + n > BGS_CHUNK_SIZE) continue;
      /* The first, the last, and the first-and-last byte of the write. */
      for (k = 0; k < 3; k++) {
        memcpy(aNew, aOld, sizeof(aNew));
        if (k != 1) aNew[iOff] ^= 0x5A;
        if (k != 0) aNew[iOff + n - 1] ^= 0xA5;
        CHECK_EQ_I64(bgs_crc32(aOld, BGS_CHUNK_SIZE) ^
                         bgs__crc32_delta(aOld + iOff, aNew + iOff, n, BGS_CHUNK_SIZE - iOff - n),
                     bgs_crc32(aNew, BGS_CHUNK_SIZE));
        /* The copying form (image.c's write): the same sum, and the old bytes become the
           new ones, also in the blocks it did not need to sum. */
        memcpy(aCopy, aOld, sizeof(aCopy));
        CHECK_EQ_I64(bgs_crc32(aOld, BGS_CHUNK_SIZE) ^
                         bgs__crc32_delta_copy(aCopy + iOff, aNew + iOff, n,
                                               BGS_CHUNK_SIZE - iOff - n),
                     bgs_crc32(aNew, BGS_CHUNK_SIZE));
        CHECK(memcmp(aCopy, aNew, sizeof(aCopy)) == 0);
      }
    }
  }
}

/* Writes leave a chunk's CRC unknown where the carry-less multiply sums it for less at the
   take, and update it from the changed bytes where not (image.c): a store written and
   taken on either path, or switching between them, reopens (the load checks every CRC)
   with the same items. */
TEST(test_storage_chunk_checksums_hold_on_either_crc_path) {
  int iCase;
  for (iCase = 0; iCase < 3; iCase++) {
    bgs_engine *pEng;
    host_store s;
    char *zBefore = NULL, *zAfter = NULL;
    int64_t aId[4], aAt[4];
    int i, n;
    bgs__crc32_clmul_allow(iCase != 1 ? 2 : 0);
    pEng = engine_new();
    store_init(&s);
    for (i = 0; i < 300; i++) {
      enqueue_simple(pEng, "item", 1000 + i);
      if (i % 7 == 0) store_flush(pEng, &s);
      if (iCase == 2) bgs__crc32_clmul_allow(i % 2 ? 2 : 0); /* writes on one, takes on the other */
    }
    n = claim_ids(pEng, 4, 2000, aId, aAt);
    CHECK_EQ_I64(n, 4);
    for (i = 0; i < n; i++) CHECK_OK(report(pEng, aId[i], aAt[i], i % 2 ? 200 : 503, NULL, 2000, NULL, 0));
    store_flush(pEng, &s);
    CHECK_OK(bgs_items(pEng, NULL, &zBefore));
    bgs_close(pEng);
    bgs__crc32_clmul_allow(iCase != 0 ? 2 : 0);
    pEng = engine_reopen(&s);
    CHECK_OK(bgs_items(pEng, NULL, &zAfter));
    CHECK_STR(zBefore, zAfter);
    bgs_free(zBefore);
    bgs_free(zAfter);
    bgs_close(pEng);
    store_free(&s);
  }
  bgs__crc32_clmul_allow(2);
}

static int has_index(bgs_engine *pEng, const char *zName) {
  sqlite3_stmt *pStmt = NULL;
  int bHas;
  CHECK(sqlite3_prepare_v2(pEng->db, "SELECT count(*) FROM sqlite_schema WHERE name = ?1", -1,
                           &pStmt, NULL) == SQLITE_OK);
  sqlite3_bind_text(pStmt, 1, zName, -1, SQLITE_STATIC);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  bHas = sqlite3_column_int(pStmt, 0);
  sqlite3_finalize(pStmt);
  return bHas;
}

/* attempts_item served no query (schema.c): a store that has it loses it at the next open,
   the drop is handed over with the next changes, and the attempt log reads the same. */
TEST(test_storage_unused_attempts_index_is_dropped_at_open) {
  bgs_engine *pEng = engine_new();
  host_store s;
  int64_t aId[1], aAt[1];
  char *zBefore = NULL, *zAfter = NULL;
  store_init(&s);
  CHECK(!has_index(pEng, "attempts_item"));
  enqueue_simple(pEng, "a", 1000);
  claim_ids(pEng, 1, 1000, aId, aAt);
  CHECK_OK(report(pEng, aId[0], aAt[0], 503, NULL, 1000, NULL, 0));
  /* A store written by an engine that still had the index. */
  CHECK(sqlite3_exec(pEng->db, "CREATE INDEX attempts_item ON attempts(item_id, seq)", NULL, NULL,
                     NULL) == SQLITE_OK);
  CHECK_OK(bgs_attempts(pEng, "{\"id\":1}", &zBefore));
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(!has_index(pEng, "attempts_item"));
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(!has_index(pEng, "attempts_item"));
  CHECK_OK(bgs_attempts(pEng, "{\"id\":1}", &zAfter));
  CHECK_STR(zBefore, zAfter);
  bgs_free(zBefore);
  bgs_free(zAfter);
  bgs_close(pEng);
  store_free(&s);
}

/* Delivers the next pending item of queue "q" with a 200. */
static void deliver_next(bgs_engine *pEng, bgs_time now) {
  int64_t aId[1], aAt[1];
  CHECK_EQ_I64(claim_ids(pEng, 1, now, aId, aAt), 1);
  CHECK_OK(report(pEng, aId[0], aAt[0], 200, NULL, now, NULL, 0));
}

/* items_state (queue, state) gave way to the partial items_done (schema.c): a store that
   still has it loses it at the next open, gets items_done, and reads and prunes the same. */
TEST(test_storage_items_state_gives_way_to_items_done_at_open) {
  bgs_engine *pEng = engine_with("\"keepDone\":2");
  host_store s;
  char *zBefore = NULL, *zAfter = NULL;
  int i;
  store_init(&s);
  CHECK(!has_index(pEng, "items_state"));
  CHECK(has_index(pEng, "items_done"));
  /* A store written by an engine that had items_state and no items_done. */
  CHECK(sqlite3_exec(pEng->db,
                     "DROP INDEX items_done; CREATE INDEX items_state ON items(queue, state)", NULL,
                     NULL, NULL) == SQLITE_OK);
  for (i = 0; i < 6; i++) enqueue_simple(pEng, "a", 1000 + i);
  for (i = 0; i < 4; i++) deliver_next(pEng, 1100 + i);
  CHECK_EQ_I64(count_state(pEng, "done", 1200), 2);
  CHECK_OK(bgs_status(pEng, NULL, 1200, &zBefore));
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(!has_index(pEng, "items_state"));
  CHECK(has_index(pEng, "items_done"));
  CHECK_OK(bgs_status(pEng, NULL, 1200, &zAfter));
  CHECK_STR(zBefore, zAfter);
  /* The change is handed over with the next changes, and the prune runs on the new index. */
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(!has_index(pEng, "items_state"));
  CHECK(has_index(pEng, "items_done"));
  for (i = 0; i < 2; i++) deliver_next(pEng, 1300 + i);
  CHECK_EQ_I64(count_state(pEng, "done", 1400), 2);
  CHECK_EQ_I64(count_state(pEng, "pending", 1400), 0);
  CHECK_EQ_I64(items_count(pEng, NULL), 2);
  bgs_free(zBefore);
  bgs_free(zAfter);
  bgs_close(pEng);
  store_free(&s);
}

/* items_entity's condition was state IN (0,1,2,4,6) (schema.c): the queries name the new
   one, which that index does not match, so a store that has it gets the index anew at
   the next open, handed over with the next changes; entity order holds throughout. */
TEST(test_storage_entity_index_of_an_older_store_is_made_anew_at_open) {
  static const char zLookup[] =
      "SELECT id FROM items WHERE entity = 'a' AND " BGS__UNFINISHED_SQL " ORDER BY id LIMIT 1";
  bgs_engine *pEng = engine_new();
  host_store s;
  int64_t a1, a2, aId[4], aAt[4];
  store_init(&s);
  a1 = enqueue_with(pEng, "a1", "\"entity\":\"a\"", 1000);
  a2 = enqueue_with(pEng, "a2", "\"entity\":\"a\"", 1001);
  /* A store written by an engine that had the old condition. */
  CHECK(sqlite3_exec(pEng->db,
                     "DROP INDEX items_entity; CREATE INDEX items_entity ON items(entity, id)"
                     "  WHERE entity IS NOT NULL AND state IN (0,1,2,4,6);",
                     NULL, NULL, NULL) == SQLITE_OK);
  CHECK(!plan_is(pEng, zLookup, "items_entity")); /* why it is made anew */
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(plan_is(pEng, zLookup, "items_entity (entity=?)"));
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK(plan_is(pEng, zLookup, "items_entity (entity=?)"));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2000, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a1);
  CHECK_OK(report(pEng, a1, aAt[0], 200, NULL, 2001, NULL, 0));
  CHECK_EQ_I64(claim_ids(pEng, 4, 2002, aId, aAt), 1);
  CHECK_EQ_I64(aId[0], a2);
  bgs_close(pEng);
  store_free(&s);
}

int bgs__image_has_changes(const bgs_image *p); /* image.c */

/* A copy of the stored file's bytes (nSize of them). */
static unsigned char *store_bytes(const host_store *p) {
  unsigned char *a = calloc(1, (size_t)p->nSize + 1);
  uint32_t i;
  CHECK(a != NULL);
  for (i = 0; i < p->nChunk && (int64_t)i * BGS_CHUNK_SIZE < p->nSize; i++) {
    int64_t iOff = (int64_t)i * BGS_CHUNK_SIZE;
    size_t n = p->nSize - iOff < BGS_CHUNK_SIZE ? (size_t)(p->nSize - iOff) : BGS_CHUNK_SIZE;
    if (p->apChunk[i] != NULL) memcpy(a + iOff, p->apChunk[i], n);
  }
  return a;
}

/* The rollback journal lives in the VFS (vfs_mirror.c). A transaction larger than the
   page cache writes pages into the image before it ends; its rollback must put the
   image back (there is no journal: image.c keeps the old chunks) so that the image, and
   so what the host is handed, is the state before, byte for byte. A transaction after
   it commits. */
TEST(test_storage_rollback_of_a_spilled_transaction_restores_the_image) {
  bgs_engine *pEng = engine_new();
  host_store s;
  unsigned char *aBefore, *aAfter;
  int64_t nSizeBefore;
  char zBody[3000];
  int i;
  store_init(&s);
  for (i = 0; i < 20; i++) enqueue_simple(pEng, "item", 1000 + i);
  store_flush(pEng, &s);
  aBefore = store_bytes(&s);
  nSizeBefore = s.nSize;
  CHECK_OK(bgs__exec(pEng, "PRAGMA cache_size=8"));
  CHECK_OK(bgs__begin(pEng));
  memset(zBody, 'b', sizeof(zBody) - 1);
  zBody[sizeof(zBody) - 1] = 0;
  for (i = 0; i < 400; i++) {
    sqlite3_stmt *pStmt = bgs__stmt(
        pEng,
        "INSERT INTO items(key, queue, method, url, headers, body, body_size, priority, state,"
        " head, due_at, created_at, updated_at) VALUES ('k', 'q', 'POST', 'https://api.test/',"
        " '{}', ?1, 3000, 2, 0, 1, 0, 0, 0)");
    CHECK(pStmt != NULL);
    sqlite3_bind_text(pStmt, 1, zBody, -1, SQLITE_STATIC);
    CHECK(sqlite3_step(pStmt) == SQLITE_DONE);
  }
  /* Also rewrite pages the items already had. */
  CHECK_OK(bgs__exec(pEng, "UPDATE items SET url = 'https://api.test/changed' WHERE id <= 20"));
  CHECK(bgs__image_has_changes(pEng->pImg)); /* the cache spilled into the image */
  bgs__rollback(pEng, BGS_ERROR);
  store_flush(pEng, &s);
  aAfter = store_bytes(&s);
  CHECK_EQ_I64(s.nSize, nSizeBefore);
  CHECK(memcmp(aBefore, aAfter, (size_t)nSizeBefore) == 0);
  free(aAfter);
  /* The next call commits, and the store reopens with it. */
  enqueue_simple(pEng, "after", 2000);
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK_EQ_I64(items_count(pEng, NULL), 21);
  bgs_close(pEng);
  free(aBefore);
  store_free(&s);
}

/* The engine runs without a rollback journal (the image keeps the old chunks instead):
   SQLite is told so, and a journal it asked for could not be opened. */
TEST(test_storage_runs_without_a_journal) {
  bgs_engine *pEng = engine_new();
  sqlite3_stmt *pStmt = bgs__stmt(pEng, "PRAGMA journal_mode");
  CHECK(pStmt != NULL);
  CHECK(sqlite3_step(pStmt) == SQLITE_ROW);
  CHECK(strcmp((const char *)sqlite3_column_text(pStmt, 0), "off") == 0);
  sqlite3_reset(pStmt);
  bgs_close(pEng);
}

/* A commit that runs out of memory halfway through writing its pages into the image
   fails as a typed error, and the image is what it was before the call, byte for byte:
   the host is handed no half-written pages, the engine goes on, and the store reopens
   with exactly the calls that succeeded. */
TEST(test_storage_commit_failing_midway_leaves_the_image_as_it_was) {
  bgs_engine *pEng = engine_new();
  host_store s;
  unsigned char *aBefore, *aAfter;
  int64_t nSizeBefore;
  static char zBody[20000];
  char *zOut = NULL;
  int i, k, rc;
  store_init(&s);
  for (i = 0; i < 20; i++) enqueue_simple(pEng, "item", 1000 + i);
  store_flush(pEng, &s);
  aBefore = store_bytes(&s);
  nSizeBefore = s.nSize;
  memset(zBody, 'b', sizeof(zBody));
  /* The k-th buffer of the commit fails, for the first few k (the body alone takes five
     chunks): each time nothing of the call is left. */
  for (k = 1; k <= 4; k++) {
    bgs__image_fail_alloc(pEng->pImg, k);
    rc = bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/big\"}",
                     zBody, sizeof(zBody), 3000, &zOut);
    CHECK(rc == BGS_STORAGE || rc == BGS_NOMEM);
    CHECK(zOut == NULL);
    bgs__image_fail_alloc(pEng->pImg, 0);
    store_flush(pEng, &s);
    aAfter = store_bytes(&s);
    CHECK_EQ_I64(s.nSize, nSizeBefore);
    CHECK(memcmp(aBefore, aAfter, (size_t)nSizeBefore) == 0);
    free(aAfter);
    CHECK_EQ_I64(items_count(pEng, NULL), 20);
  }
  /* The engine goes on: the same call now commits, and the store reopens with it. */
  CHECK_OK(bgs_enqueue(pEng, "{\"queue\":\"q\",\"method\":\"POST\",\"url\":\"https://api.test/big\"}",
                       zBody, sizeof(zBody), 3000, &zOut));
  bgs_free(zOut);
  store_flush(pEng, &s);
  bgs_close(pEng);
  pEng = engine_reopen(&s);
  CHECK_EQ_I64(items_count(pEng, NULL), 21);
  bgs_close(pEng);
  free(aBefore);
  store_free(&s);
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* bgs_changes_view hands over what bgs_changes_take does (the same chunks, checksums and
   size), in place: two engines given the same calls, one taking copies, one viewing. */
TEST(test_storage_views_hand_over_what_take_copies) {
  bgs_engine *pTake = engine_new(), *pView = engine_new();
  int round, i;
  for (round = 0; round < 30; round++) {
    unsigned char *pBuf;
    size_t nBuf;
    const bgs_chunk_view *aView;
    uint32_t nView;
    int64_t nSize;
    double rSize;
    for (i = 0; i <= round % 4; i++) {
      enqueue_simple(pTake, round % 3 ? "small" : "other", 1000 + round);
      enqueue_simple(pView, round % 3 ? "small" : "other", 1000 + round);
    }
    CHECK_OK(bgs_changes_take(pTake, &pBuf, &nBuf));
    CHECK_OK(bgs_changes_view(pView, &aView, &nView, &nSize));
    memcpy(&rSize, pBuf + 8, 8);
    CHECK_EQ_I64(nSize, (int64_t)rSize);
    CHECK_EQ_I64(nView, le32(pBuf + 4));
    for (i = 0; i < (int)nView; i++) {
      CHECK_EQ_I64(aView[i].iChunk, le32(pBuf + 16 + i * 8));
      CHECK_EQ_I64(aView[i].uCrc, le32(pBuf + 16 + i * 8 + 4));
      CHECK(bgs_crc32(aView[i].pData, BGS_CHUNK_SIZE) == aView[i].uCrc);
      CHECK(memcmp(aView[i].pData, pBuf + 16 + (size_t)nView * 8 + (size_t)i * BGS_CHUNK_SIZE,
                   BGS_CHUNK_SIZE) == 0);
    }
    bgs_free(pBuf);
    /* Taken: nothing is left for the next view. */
    CHECK_OK(bgs_changes_view(pView, &aView, &nView, &nSize));
    CHECK_EQ_I64(nView, 0);
  }
  {
    const bgs_chunk_view *aView0;
    uint32_t nView0;
    int64_t nSize0;
    CHECK_RC(bgs_changes_view(NULL, &aView0, &nView0, &nSize0), BGS_MISUSE);
  }
  bgs_close(pTake);
  bgs_close(pView);
}
