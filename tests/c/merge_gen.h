/*
 * merge_gen.h -- JSON documents for the merge properties, drawn from a byte source:
 * a seeded PRNG (tests/c/test_merge.c, every native run) or the fuzzer's input
 * (tests/fuzz/fuzz_merge.c). Header-only so both builds share one generator.
 *
 * A document is built as a small tree, then serialized; a mutation copies a tree with
 * random edits (change, delete, add, recurse, change type), so base/local/remote share
 * structure the way real edits do. Keys are unique per object and include unicode,
 * quotes, dots, spaces and the empty key; strings include escapes.
 */
#ifndef BGS_MERGE_GEN_H
#define BGS_MERGE_GEN_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct merge_gen {
  uint64_t s;             /* PRNG state when pData is NULL */
  const uint8_t *pData;   /* fuzz input, or NULL */
  size_t nData, iData;
} merge_gen;

static void merge_gen_seed(merge_gen *g, uint64_t seed) {
  memset(g, 0, sizeof(*g));
  g->s = seed ? seed : 1;
}

static void merge_gen_bytes(merge_gen *g, const uint8_t *p, size_t n) {
  memset(g, 0, sizeof(*g));
  g->pData = p;
  g->nData = n;
}

/* A number in [0, n). The fuzz source yields 0 once its input is used up. */
static unsigned merge_gen_next(merge_gen *g, unsigned n) {
  if (n <= 1) return 0;
  if (g->pData != NULL) {
    if (g->iData >= g->nData) return 0;
    return g->pData[g->iData++] % n;
  }
  g->s ^= g->s << 13;
  g->s ^= g->s >> 7;
  g->s ^= g->s << 17;
  return (unsigned)((g->s >> 11) % n);
}

static const char *const merge_gen_keys[] = {
    "a", "b", "c", "title", "n", "\xC3\xA9t\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC",
    "\xF0\x9F\x98\x80", "a.b", "q\\\"k", "sp ace", "", "x[0]", "$"};
#define MERGE_GEN_NKEYS (sizeof(merge_gen_keys) / sizeof(merge_gen_keys[0]))

static const char *const merge_gen_scalars[] = {
    "0", "1", "-7", "42", "1.5", "0.30000000000000004", "-2.25e3", "\"\"", "\"x\"",
    "\"line\\nbreak\"", "\"q\\\"uote\"", "\"\\u00e9\"", "\"\xF0\x9F\x98\x80\"", "true", "false",
    "null", "[]", "[1,2]", "[{\"a\":1},\"s\"]", "{}"};
#define MERGE_GEN_NSCALARS (sizeof(merge_gen_scalars) / sizeof(merge_gen_scalars[0]))

/* A value: a scalar text (zText) or an object (nKid members). */
typedef struct merge_node {
  const char *zText;
  int nKid;
  int aKey[MERGE_GEN_NKEYS];
  struct merge_node *apKid[MERGE_GEN_NKEYS];
} merge_node;

static merge_node *merge_node_new(void) {
  merge_node *p = calloc(1, sizeof(*p));
  if (p == NULL) abort();
  return p;
}

static void merge_node_free(merge_node *p) {
  int i;
  if (p == NULL) return;
  for (i = 0; i < p->nKid; i++) merge_node_free(p->apKid[i]);
  free(p);
}

static merge_node *merge_gen_tree(merge_gen *g, int nDepth);

static merge_node *merge_gen_value(merge_gen *g, int nDepth) {
  if (nDepth < 4 && merge_gen_next(g, 4) == 0) return merge_gen_tree(g, nDepth + 1);
  {
    merge_node *p = merge_node_new();
    p->zText = merge_gen_scalars[merge_gen_next(g, MERGE_GEN_NSCALARS)];
    return p;
  }
}

static int merge_node_find(const merge_node *p, int iKey) {
  int i;
  for (i = 0; i < p->nKid; i++) {
    if (p->aKey[i] == iKey) return i;
  }
  return -1;
}

static merge_node *merge_gen_tree(merge_gen *g, int nDepth) {
  merge_node *p = merge_node_new();
  int n = (int)merge_gen_next(g, 6), i;
  for (i = 0; i < n; i++) {
    int k = (int)merge_gen_next(g, MERGE_GEN_NKEYS);
    if (merge_node_find(p, k) >= 0) continue;
    p->aKey[p->nKid] = k;
    p->apKid[p->nKid] = merge_gen_value(g, nDepth);
    p->nKid++;
  }
  return p;
}

static merge_node *merge_node_copy(const merge_node *p) {
  merge_node *q = merge_node_new();
  int i;
  q->zText = p->zText;
  q->nKid = p->nKid;
  for (i = 0; i < p->nKid; i++) {
    q->aKey[i] = p->aKey[i];
    q->apKid[i] = merge_node_copy(p->apKid[i]);
  }
  return q;
}

/* A copy of an object node with random edits. */
static merge_node *merge_node_mutate(merge_gen *g, const merge_node *p, int nDepth) {
  merge_node *q = merge_node_new();
  int i, nAdd;
  for (i = 0; i < p->nKid; i++) {
    const merge_node *pKid = p->apKid[i];
    merge_node *pNew;
    switch (merge_gen_next(g, 6)) {
      case 0: /* delete */
        continue;
      case 1: /* change (possibly the type) */
        pNew = merge_gen_value(g, nDepth);
        break;
      case 2: /* recurse into an object */
        pNew = pKid->zText == NULL ? merge_node_mutate(g, pKid, nDepth + 1) : merge_node_copy(pKid);
        break;
      default: /* keep */
        pNew = merge_node_copy(pKid);
        break;
    }
    q->aKey[q->nKid] = p->aKey[i];
    q->apKid[q->nKid] = pNew;
    q->nKid++;
  }
  nAdd = (int)merge_gen_next(g, 3);
  for (i = 0; i < nAdd; i++) {
    int k = (int)merge_gen_next(g, MERGE_GEN_NKEYS);
    if (merge_node_find(q, k) >= 0) continue;
    q->aKey[q->nKid] = k;
    q->apKid[q->nKid] = merge_gen_value(g, nDepth);
    q->nKid++;
  }
  return q;
}

static void merge_node_write(const merge_node *p, char **pz, size_t *pn, size_t *pAlloc) {
  char buf[64];
  const char *zAdd;
  int i;
#define MERGE_GEN_PUT(s)                                      \
  do {                                                        \
    size_t nAdd_ = strlen(s);                                 \
    if (*pn + nAdd_ + 1 > *pAlloc) {                          \
      *pAlloc = (*pn + nAdd_ + 1) * 2;                        \
      *pz = realloc(*pz, *pAlloc);                            \
      if (*pz == NULL) abort();                               \
    }                                                         \
    memcpy(*pz + *pn, s, nAdd_ + 1);                          \
    *pn += nAdd_;                                             \
  } while (0)
  if (p->zText != NULL) {
    MERGE_GEN_PUT(p->zText);
    return;
  }
  MERGE_GEN_PUT("{");
  for (i = 0; i < p->nKid; i++) {
    if (i > 0) MERGE_GEN_PUT(",");
    snprintf(buf, sizeof(buf), "\"%s\":", merge_gen_keys[p->aKey[i]]);
    zAdd = buf;
    MERGE_GEN_PUT(zAdd);
    merge_node_write(p->apKid[i], pz, pn, pAlloc);
  }
  MERGE_GEN_PUT("}");
#undef MERGE_GEN_PUT
}

static char *merge_node_text(const merge_node *p) {
  char *z = NULL;
  size_t n = 0, nAlloc = 0;
  merge_node_write(p, &z, &n, &nAlloc);
  return z;
}

/* Parses nothing: mutations work on the tree of the last generated object, kept here. */
typedef struct merge_gen_doc {
  merge_node *pTree;
  char *zText;
} merge_gen_doc;

static merge_gen_doc merge_gen_doc_new(merge_gen *g) {
  merge_gen_doc d;
  d.pTree = merge_gen_tree(g, 0);
  d.zText = merge_node_text(d.pTree);
  return d;
}

static merge_gen_doc merge_gen_doc_mutate(merge_gen *g, const merge_gen_doc *pBase) {
  merge_gen_doc d;
  d.pTree = merge_node_mutate(g, pBase->pTree, 0);
  d.zText = merge_node_text(d.pTree);
  return d;
}

static void merge_gen_doc_free(merge_gen_doc *d) {
  merge_node_free(d->pTree);
  free(d->zText);
  d->pTree = NULL;
  d->zText = NULL;
}

#endif
