/*
 * crc32.c -- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of
 * every chunk the host stores (bgs_image_take) and checks on load (bgs_image_load).
 *
 * Eight bytes a step through eight tables ("slicing by 8"): every committed chunk is
 * checksummed whole (4 KiB), and the one-table loop, a byte a step with each step
 * waiting for the last, was 40% of an enqueue -> claim -> complete cycle natively.
 * The value is the same CRC-32 as before (and as sw/storage/LogStore.js computes), so
 * stored chunks keep their checksums; tests/c/test_storage.c pins it.
 *
 * bgs__crc32_delta updates a known checksum after a write instead of summing the chunk
 * again: a page write rewrites 4 KiB but changes a few hundred bytes, and summing whole
 * chunks at every take was still a seventh of a cycle. CRC is linear: for messages of
 * equal length crc(A) ^ crc(B) = crc0(A ^ B), crc0 being the CRC with no initial or final
 * inversion, and the zero bytes of A ^ B cost nothing (leading ones leave the register 0,
 * a run of n others multiplies it by x^(8n) mod P in one step, as zlib's crc32_combine).
 */
#include <string.h>

#include "internal.h"

static uint32_t aTable[8][256];
static uint32_t aShift[BGS_CHUNK_SIZE + 1]; /* aShift[n] = x^(8n) mod P, reflected */
static uint32_t aReduce4[16]; /* what the four lowest bits of v add to v * x^4 */
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
  /* x^0 is the top bit when reflected; each further power is one zero byte through the
     register. */
  for (b = 0; b < 16; b++) {
    uint32_t v = b;
    for (j = 0; j < 4; j++) v = (v & 1) ? 0xEDB88320u ^ (v >> 1) : v >> 1;
    aReduce4[b] = v;
  }
  aShift[0] = 0x80000000u;
  for (k = 1; k <= BGS_CHUNK_SIZE; k++) {
    uint32_t prev = aShift[k - 1];
    aShift[k] = (prev >> 8) ^ aTable[0][prev & 0xFF];
  }
  bReady = 1;
}

/* Little-endian load, any alignment (the compiler makes it one load on x86-64 and wasm). */
static uint32_t load_le32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* The CRC register c after nData more bytes, no inversions. */
static uint32_t crc_feed(uint32_t c, const unsigned char *p, size_t nData) {
  for (; nData >= 8; nData -= 8, p += 8) {
    uint32_t lo = load_le32(p) ^ c;
    uint32_t hi = load_le32(p + 4);
    c = aTable[7][lo & 0xFF] ^ aTable[6][(lo >> 8) & 0xFF] ^ aTable[5][(lo >> 16) & 0xFF] ^
        aTable[4][lo >> 24] ^ aTable[3][hi & 0xFF] ^ aTable[2][(hi >> 8) & 0xFF] ^
        aTable[1][(hi >> 16) & 0xFF] ^ aTable[0][hi >> 24];
  }
  for (; nData > 0; nData--, p++) c = aTable[0][(c ^ *p) & 0xFF] ^ (c >> 8);
  return c;
}

uint32_t bgs_crc32(const void *pData, size_t nData) {
  const unsigned char *p = pData;
  uint32_t c = 0xFFFFFFFFu;
  if (!bReady) crc_tables();
  if (nData >= 64 && bgs__crc32_clmul()) {
    size_t nFold = nData & ~(size_t)15; /* whole 16-byte blocks (crc32_clmul.c) */
    c = bgs__crc32_clmul_feed(c, p, nFold);
    p += nFold;
    nData -= nFold;
  }
  return crc_feed(c, p, nData) ^ 0xFFFFFFFFu;
}

uint32_t bgs__crc32_copy(void *pDst, const void *pSrc, size_t n) {
  size_t nFold = n & ~(size_t)15;
  uint32_t c;
  if (n < 64 || !bgs__crc32_clmul()) {
    memcpy(pDst, pSrc, n);
    return bgs_crc32(pSrc, n);
  }
  c = bgs__crc32_clmul_copy(0xFFFFFFFFu, pDst, pSrc, nFold);
  memcpy((unsigned char *)pDst + nFold, (const unsigned char *)pSrc + nFold, n - nFold);
  if (!bReady) crc_tables();
  return crc_feed(c, (const unsigned char *)pSrc + nFold, n - nFold) ^ 0xFFFFFFFFu;
}

/* a * b mod P, both reflected (bit 31 is x^0). zlib's multmodp takes a bit at a time
   with a branch on each; here a goes four bits at a time, by Horner's rule from its
   highest powers: p = p * x^4 + (nibble of a) * b, with the 16 multiples of b in a table
   and x^4 reduced through aReduce4. Several per chunk write, so it mattered (6%). */
static uint32_t mul_mod_p(uint32_t a, uint32_t b) {
  uint32_t aMul[16], aPow[4], p;
  int i, k;
  /* aMul[n]: n's bits 3, 2, 1, 0 stand for x^0, x^1, x^2, x^3 (reflected, as in a). */
  for (k = 0; k < 4; k++) {
    aPow[k] = b; /* b * x^k */
    b = (b >> 1) ^ (0xEDB88320u & (0u - (b & 1)));
  }
  aMul[0] = 0;
  for (k = 0; k < 4; k++) {
    int iBit = 1 << k;
    for (i = 0; i < iBit; i++) aMul[iBit + i] = aPow[3 - k] ^ aMul[i];
  }
  p = aMul[a & 0xF]; /* a's highest powers, x^28..x^31 */
  for (i = 4; i < 32; i += 4) {
    p = (p >> 4) ^ aReduce4[p & 0xF] ^ aMul[(a >> i) & 0xF];
  }
  return p;
}

/* One slicing step: the register c after the eight bytes lo (first four) and hi. */
static uint32_t crc_step8(uint32_t c, uint32_t lo, uint32_t hi) {
  lo ^= c;
  return aTable[7][lo & 0xFF] ^ aTable[6][(lo >> 8) & 0xFF] ^ aTable[5][(lo >> 16) & 0xFF] ^
         aTable[4][lo >> 24] ^ aTable[3][hi & 0xFF] ^ aTable[2][(hi >> 8) & 0xFF] ^
         aTable[1][(hi >> 16) & 0xFF] ^ aTable[0][hi >> 24];
}

/* The register c followed by n zero bytes: short runs step through them (cheaper than a
   multiplication), long ones multiply by x^(8n). */
static uint32_t crc_zeros(uint32_t c, size_t n) {
  if (c == 0) return 0;
  if (n < 128) {
    for (; n >= 8; n -= 8) c = crc_step8(c, 0, 0);
    for (; n > 0; n--) c = aTable[0][c & 0xFF] ^ (c >> 8);
    return c;
  }
  while (n > 0) {
    size_t k = n > BGS_CHUNK_SIZE ? BGS_CHUNK_SIZE : n;
    c = mul_mod_p(aShift[k], c);
    n -= k;
  }
  return c;
}

#define BGS__CRC_BLOCK 256 /* bytes compared at once: most of a page write is unchanged */

/* Whether n bytes differ. Natively libc's memcmp compares 32 bytes a step (AVX2) and
   stops at the first difference: a third of the instructions of the loop below, which
   the compiler widens only to 16 bytes. In wasm, musl's memcmp goes a byte a step, and
   the loop without branches is much faster. */
static int block_differs(const unsigned char *pA, const unsigned char *pB, size_t n) {
#if defined(__wasm__)
  uint64_t acc = 0;
  size_t i;
  for (i = 0; i + 8 <= n; i += 8) {
    uint64_t a, b;
    memcpy(&a, pA + i, 8); /* byte order does not matter for equality */
    memcpy(&b, pB + i, 8);
    acc |= a ^ b;
  }
  for (; i < n; i++) acc |= (uint64_t)(pA[i] ^ pB[i]);
  return acc != 0;
#else
  return memcmp(pA, pB, n) != 0;
#endif
}

/* The xor of the 8 bytes at i of pA and pB, as two little-endian words (0 when equal). */
static uint64_t word_xor(const unsigned char *pA, const unsigned char *pB, size_t i) {
  uint64_t a, b;
  memcpy(&a, pA + i, 8);
  memcpy(&b, pB + i, 8);
  return a ^ b;
}

/* The delta, and with pCopy (pOld itself, or NULL) the changed blocks copied from pNew
   into it as they are summed: the write that follows then need not copy the 4 KiB. */
static uint32_t crc_delta(unsigned char *pCopy, const unsigned char *pOld,
                          const unsigned char *pNew, size_t n, size_t nAfter) {
  uint32_t c = 0;
  size_t iBlock, nZeros = 0;
  if (!bReady) crc_tables();
  for (iBlock = 0; iBlock < n; iBlock += BGS__CRC_BLOCK) {
    size_t nBlock = n - iBlock < BGS__CRC_BLOCK ? n - iBlock : BGS__CRC_BLOCK;
    size_t nWords = nBlock & ~(size_t)7; /* bytes in whole words */
    const unsigned char *pO = pOld + iBlock, *pN = pNew + iBlock;
    size_t i = 0, iEnd = nWords;
    if (!block_differs(pO, pN, nBlock)) {
      nZeros += nBlock;
      continue;
    }
    /* A changed block is summed from its first to its last changed word, unchanged words
       between included: a page write changes runs (a cell, the shifted cell pointers),
       and a branch and a multiplication per gap cost more than summing the gap. */
    while (i < nWords && word_xor(pO, pN, i) == 0) i += 8;
    while (iEnd > i && word_xor(pO, pN, iEnd - 8) == 0) iEnd -= 8;
    if (i < iEnd) {
      c = crc_zeros(c, nZeros + i);
      nZeros = 0;
      for (; i < iEnd; i += 8) {
        c = crc_step8(c, load_le32(pO + i) ^ load_le32(pN + i),
                      load_le32(pO + i + 4) ^ load_le32(pN + i + 4));
      }
      nZeros = nWords - iEnd;
    } else {
      nZeros += nWords; /* the change is in the bytes after the last whole word */
    }
    /* The last block's bytes after its last whole word. */
    for (i = nWords; i < nBlock; i++) {
      unsigned char x = (unsigned char)(pO[i] ^ pN[i]);
      if (x == 0) {
        nZeros++;
        continue;
      }
      c = crc_zeros(c, nZeros);
      nZeros = 0;
      c = aTable[0][(c ^ x) & 0xFF] ^ (c >> 8);
    }
    if (pCopy != NULL) memcpy(pCopy + iBlock, pN, nBlock);
  }
  return crc_zeros(c, nZeros + nAfter);
}

uint32_t bgs__crc32_delta(const unsigned char *pOld, const unsigned char *pNew, size_t n,
                          size_t nAfter) {
  return crc_delta(NULL, pOld, pNew, n, nAfter);
}

uint32_t bgs__crc32_delta_copy(unsigned char *pOld, const unsigned char *pNew, size_t n,
                               size_t nAfter) {
  return crc_delta(pOld, pOld, pNew, n, nAfter);
}
