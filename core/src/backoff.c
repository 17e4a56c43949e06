/*
 * backoff.c -- pure delay maths: no state, no clock. The random part of a jitter comes
 * from a hash of (seed, item, attempt), so a delay is reproducible on its own, whatever
 * order items fail in and across restarts.
 */
#include <math.h>

#include "internal.h"

/* splitmix64: a fast, well-mixed 64-bit hash. */
static uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/* Uniform in [0, n] (inclusive), n >= 0. */
static int64_t uniform(uint64_t uSeed, int64_t iItem, int nAttempt, int64_t n) {
  uint64_t h = mix64(uSeed ^ mix64((uint64_t)iItem ^ mix64((uint64_t)nAttempt)));
  if (n <= 0) return 0;
  return (int64_t)(h % ((uint64_t)n + 1));
}

int64_t bgs__backoff_delay(const bgs__backoff *p, int nAttempt, uint64_t uSeed, int64_t iItem) {
  double rDelay;
  int64_t nDelay;
  if (nAttempt < 1) nAttempt = 1;
  if (p->eKind == BGS__BACKOFF_LINEAR) {
    rDelay = (double)p->nInitialMs * (double)nAttempt;
  } else {
    rDelay = (double)p->nInitialMs * pow(p->rFactor, (double)(nAttempt - 1));
  }
  /* Compare as doubles first: pow() may overflow any integer type. */
  if (!(rDelay < (double)p->nMaxMs)) rDelay = (double)p->nMaxMs;
  if (rDelay < 0) rDelay = 0;
  nDelay = (int64_t)rDelay;
  switch (p->eJitter) {
    case BGS__JITTER_FULL:
      return uniform(uSeed, iItem, nAttempt, nDelay);
    case BGS__JITTER_EQUAL:
      return nDelay / 2 + uniform(uSeed, iItem, nAttempt, nDelay - nDelay / 2);
    default:
      return nDelay;
  }
}
