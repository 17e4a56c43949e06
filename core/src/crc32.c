/*
 * crc32.c -- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of
 * every chunk the host stores (bgs_image_take) and checks on load (bgs_image_load).
 *
 * Eight bytes a step through eight tables ("slicing by 8"): every committed chunk is
 * checksummed whole (4 KiB), and the one-table loop, a byte a step with each step
 * waiting for the last, was 40% of an enqueue -> claim -> complete cycle natively.
 * The value is the same CRC-32 as before (and as sw/storage/LogStore.js computes), so
 * stored chunks keep their checksums; tests/c/test_storage.c pins it.
 */
#include "internal.h"

static uint32_t aTable[8][256];
static int bReady = 0;

/* aTable[0] is the byte table; aTable[k][b] is the CRC of byte b followed by k zero
   bytes, so eight lookups combine eight bytes at once. */
static void crc_tables(void) {
  uint32_t b, j, k;
  for (b = 0; b < 256; b++) {
    uint32_t v = b;
    for (j = 0; j < 8; j++) v = (v & 1) ? 0xEDB88320u ^ (v >> 1) : v >> 1;
    aTable[0][b] = v;
  }
  for (b = 0; b < 256; b++) {
    for (k = 1; k < 8; k++) {
      uint32_t prev = aTable[k - 1][b];
      aTable[k][b] = (prev >> 8) ^ aTable[0][prev & 0xFF];
    }
  }
  bReady = 1;
}

/* Little-endian load, any alignment (the compiler makes it one load on x86-64 and wasm). */
static uint32_t load_le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

uint32_t bgs_crc32(const void *pData, size_t nData) {
  const unsigned char *p = pData;
  uint32_t c = 0xFFFFFFFFu;
  if (!bReady) crc_tables();
  for (; nData >= 8; nData -= 8, p += 8) {
    uint32_t lo = load_le32(p) ^ c;
    uint32_t hi = load_le32(p + 4);
    c = aTable[7][lo & 0xFF] ^ aTable[6][(lo >> 8) & 0xFF] ^ aTable[5][(lo >> 16) & 0xFF] ^
        aTable[4][lo >> 24] ^ aTable[3][hi & 0xFF] ^ aTable[2][(hi >> 8) & 0xFF] ^
        aTable[1][(hi >> 16) & 0xFF] ^ aTable[0][hi >> 24];
  }
  for (; nData > 0; nData--, p++) c = aTable[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}
