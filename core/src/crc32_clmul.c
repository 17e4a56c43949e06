/*
 * crc32_clmul.c -- the same CRC-32 as crc32.c, 64 bytes a step with the x86-64
 * carry-less multiply (PCLMULQDQ), where the CPU has it and AVX (checked once at run
 * time; AVX's three-operand forms spare a register copy per multiply), and 128 bytes a
 * step where it also has VPCLMULQDQ and AVX2 (two multiplies per instruction, in the two
 * 128-bit halves of a 256-bit register: half the instructions a chunk).
 *
 * Natively every chunk a commit writes was diffed against its old bytes and the change
 * summed through the tables (bgs__crc32_delta_copy): about 2,900 instructions a page
 * write, a sixth of an enqueue -> claim -> complete cycle. Folding a whole 4 KiB chunk
 * costs about 1,250, so with PCLMULQDQ image.c copies what is written and sums the chunk
 * whole: while copying a whole-page write (bgs__crc32_clmul_copy; with VPCLMULQDQ the
 * stores ride along the fold, the copy costs next to nothing), else at the take. The
 * algorithm is Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ"
 * (Gopal et al., 2009), with the bit-reflected constants for 0xEDB88320 that zlib's
 * crc32_simd.c uses. WebAssembly has no carry-less multiply: there bgs__crc32_clmul
 * says no and crc32.c's table path does all the work.
 */
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <immintrin.h>

static int g_eClmul = -1;   /* -1 not yet asked, 0 no, 1 PCLMULQDQ, 2 VPCLMULQDQ too */
static int g_eAllowed = 2; /* tests lower it to run the other paths natively */

int bgs__crc32_clmul(void) {
  if (g_eClmul < 0) {
    __builtin_cpu_init();
    g_eClmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx");
    if (g_eClmul && __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("avx2")) {
      g_eClmul = 2;
    }
  }
  return g_eClmul < g_eAllowed ? g_eClmul : g_eAllowed;
}

void bgs__crc32_clmul_allow(int eAllow) { g_eAllowed = eAllow; }

#define CLMUL_LO(a, k) _mm_clmulepi64_si128((a), (k), 0x00)
#define CLMUL_HI(a, k) _mm_clmulepi64_si128((a), (k), 0x11)

/* x folded 128 bits forward (by the constants in k) and added to y. */
__attribute__((target("avx,pclmul"))) static __m128i fold16(__m128i x, __m128i k, __m128i y) {
  return _mm_xor_si128(_mm_xor_si128(CLMUL_LO(x, k), CLMUL_HI(x, k)), y);
}

/* x3 and x4 of a 256-bit register: each 128-bit half folded forward by the constants in
   its half of k, plus y. */
__attribute__((target("avx2,vpclmulqdq"))) static __m256i fold32(__m256i x, __m256i k,
                                                                  __m256i y) {
  return _mm256_xor_si256(
      _mm256_xor_si256(_mm256_clmulepi64_epi128(x, k, 0x00), _mm256_clmulepi64_epi128(x, k, 0x11)),
      y);
}

#define LOAD32(p) _mm256_loadu_si256((const __m256i *)(p))
#define STORE32(p, v) _mm256_storeu_si256((__m256i *)(p), (v))

/* The first n bytes at p (n >= 256) folded into 128 bits, 128 bytes a step, with the
   register c added to the first; *pn becomes n mod 128. Each 256-bit register holds two
   128-bit lanes; the constants are the same pair in both halves. With pOut, every block
   folded is also stored there: a copy that reads its bytes once (inlined twice, so the
   test of pOut is resolved at compile time). */
__attribute__((target("avx2,vpclmulqdq"), always_inline)) static inline __m128i fold_wide_to(
    uint32_t c, const unsigned char *p, size_t *pn, unsigned char *pOut) {
  /* x^(8*128+32), x^(8*128-32); x^(2*128+32), x^(2*128-32) (crc32.c's constants for
     other distances, computed the same way). */
  const __m256i k8 = _mm256_set_epi64x(0x014a7fe880, 0x01e88ef372, 0x014a7fe880, 0x01e88ef372);
  const __m256i k2 = _mm256_set_epi64x(0x015a546366, 0x00f1da05aa, 0x015a546366, 0x00f1da05aa);
  const __m128i k1 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  size_t n = *pn;
  __m256i x1 = LOAD32(p), x2 = LOAD32(p + 32), x3 = LOAD32(p + 64), x4 = LOAD32(p + 96);
  __m256i y1 = _mm256_xor_si256(x1, _mm256_set_epi64x(0, 0, 0, (long long)c));
  __m256i y2 = x2, y3 = x3, y4 = x4;
  if (pOut) {
    STORE32(pOut, x1), STORE32(pOut + 32, x2), STORE32(pOut + 64, x3), STORE32(pOut + 96, x4);
    pOut += 128;
  }
  for (p += 128, n -= 128; n >= 128; p += 128, n -= 128) {
    x1 = LOAD32(p), x2 = LOAD32(p + 32), x3 = LOAD32(p + 64), x4 = LOAD32(p + 96);
    if (pOut) {
      STORE32(pOut, x1), STORE32(pOut + 32, x2), STORE32(pOut + 64, x3), STORE32(pOut + 96, x4);
      pOut += 128;
    }
    y1 = fold32(y1, k8, x1);
    y2 = fold32(y2, k8, x2);
    y3 = fold32(y3, k8, x3);
    y4 = fold32(y4, k8, x4);
  }
  /* Four registers into one, then its two lanes into one. */
  y2 = fold32(y1, k2, y2);
  y3 = fold32(y2, k2, y3);
  y4 = fold32(y3, k2, y4);
  *pn = n;
  return fold16(_mm256_castsi256_si128(y4), k1, _mm256_extracti128_si256(y4, 1));
}

__attribute__((target("avx2,vpclmulqdq"))) static __m128i fold_wide(uint32_t c,
                                                                     const unsigned char *p,
                                                                     size_t *pn) {
  return fold_wide_to(c, p, pn, NULL);
}

__attribute__((target("avx2,vpclmulqdq"))) static __m128i fold_wide_copy(
    uint32_t c, const unsigned char *p, size_t *pn, unsigned char *pOut) {
  return fold_wide_to(c, p, pn, pOut);
}

/* The 16-byte blocks left of n at p (a multiple of 16) folded into x1, then 128 bits to
   64 and Barrett's reduction to 32. */
__attribute__((target("avx,pclmul"))) static uint32_t fold_finish(__m128i x1,
                                                                  const unsigned char *p,
                                                                  size_t n) {
  /* x^(128+32), x^(128-32); x^64; floor(x^64 / P), P. */
  const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124);
  const __m128i poly = _mm_set_epi64x(0x01f7011641, 0x01db710641);
  const __m128i mask32 = _mm_setr_epi32(~0, 0, ~0, 0);
  __m128i t;
  for (; n >= 16; p += 16, n -= 16) x1 = fold16(x1, k3k4, _mm_loadu_si128((const __m128i *)p));
  t = _mm_clmulepi64_si128(x1, k3k4, 0x10);
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), t);
  t = _mm_srli_si128(x1, 4);
  x1 = _mm_xor_si128(CLMUL_LO(_mm_and_si128(x1, mask32), k5k0), t);
  t = _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10);
  t = CLMUL_LO(_mm_and_si128(t, mask32), poly);
  x1 = _mm_xor_si128(x1, t);
  return (uint32_t)_mm_extract_epi32(x1, 1);
}

/* The register c (no inversions, as crc32.c's crc_feed) after the n bytes at p; n is a
   multiple of 16 and at least 64. */
__attribute__((target("avx,pclmul"))) uint32_t bgs__crc32_clmul_feed(uint32_t c,
                                                                         const unsigned char *p,
                                                                         size_t n) {
  /* x^(4*128+32), x^(4*128-32); x^(128+32), x^(128-32). */
  const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
  const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
  __m128i x1;
  if (n >= 256 && bgs__crc32_clmul() == 2) {
    size_t nLeft = n;
    x1 = fold_wide(c, p, &nLeft);
    return fold_finish(x1, p + (n - nLeft), nLeft);
  } else {
    __m128i x2 = _mm_loadu_si128((const __m128i *)(p + 16));
    __m128i x3 = _mm_loadu_si128((const __m128i *)(p + 32));
    __m128i x4 = _mm_loadu_si128((const __m128i *)(p + 48));
    x1 = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)c));
    for (p += 64, n -= 64; n >= 64; p += 64, n -= 64) {
      x1 = fold16(x1, k1k2, _mm_loadu_si128((const __m128i *)p));
      x2 = fold16(x2, k1k2, _mm_loadu_si128((const __m128i *)(p + 16)));
      x3 = fold16(x3, k1k2, _mm_loadu_si128((const __m128i *)(p + 32)));
      x4 = fold16(x4, k1k2, _mm_loadu_si128((const __m128i *)(p + 48)));
    }
    /* Four lanes into one. */
    x1 = fold16(x1, k3k4, x2);
    x1 = fold16(x1, k3k4, x3);
    x1 = fold16(x1, k3k4, x4);
  }
  return fold_finish(x1, p, n);
}

/* As bgs__crc32_clmul_feed, and the n bytes at p copied to pDst (not overlapping). With
   VPCLMULQDQ the copy rides along the fold: the bytes are read once. */
uint32_t bgs__crc32_clmul_copy(uint32_t c, unsigned char *pDst, const unsigned char *p,
                               size_t n) {
  if (n >= 256 && bgs__crc32_clmul() == 2) {
    size_t nLeft = n;
    __m128i x1 = fold_wide_copy(c, p, &nLeft, pDst);
    memcpy(pDst + (n - nLeft), p + (n - nLeft), nLeft);
    return fold_finish(x1, p + (n - nLeft), nLeft);
  }
  memcpy(pDst, p, n);
  return bgs__crc32_clmul_feed(c, p, n);
}

#else

int bgs__crc32_clmul(void) { return 0; }

void bgs__crc32_clmul_allow(int eAllow) { (void)eAllow; }

uint32_t bgs__crc32_clmul_feed(uint32_t c, const unsigned char *p, size_t n) {
  (void)p;
  (void)n;
  return c; /* never called: bgs__crc32_clmul() is 0 */
}

uint32_t bgs__crc32_clmul_copy(uint32_t c, unsigned char *pDst, const unsigned char *p,
                               size_t n) {
  (void)pDst;
  (void)p;
  (void)n;
  return c; /* never called: bgs__crc32_clmul() is 0 */
}

#endif
