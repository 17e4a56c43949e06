/*
 * wasm_exports.c -- the engine's face to JavaScript; the only file that includes
 * <emscripten.h>. Without WASM_BIGINT a 64-bit integer cannot cross the boundary as
 * one number, so times, ids and seeds cross as doubles (exact up to 2^53, which holds
 * every millisecond time and every item id) and are converted here.
 * Out-parameters are pointers into wasm memory that the JS binding allocates.
 * The export list is core/wasm_exports.json: must match.
 */
#include <emscripten.h>

#include "bgsync.h"

EMSCRIPTEN_KEEPALIVE int bgs_wasm_image_set_size(bgs_image *pImg, double rSize) {
  return bgs_image_set_size(pImg, (int64_t)rSize);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_open(bgs_image *pImg, const char *zInstallId, double rSeed,
                                       double rLeaseMs, double rNow, bgs_engine **ppEng) {
  bgs_config cfg = {0};
  cfg.uSeed = (uint64_t)rSeed;
  cfg.nLeaseMs = (int64_t)rLeaseMs;
  cfg.zInstallId = zInstallId;
  return bgs_open(pImg, &cfg, (bgs_time)rNow, ppEng);
}

/* bgs_changes_view with the size as a double. */
EMSCRIPTEN_KEEPALIVE int bgs_wasm_changes_view(bgs_engine *pEng, const bgs_chunk_view **paView,
                                               uint32_t *pnView, double *prSize) {
  int64_t nSize = 0;
  int rc = bgs_changes_view(pEng, paView, pnView, &nSize);
  *prSize = (double)nSize;
  return rc;
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_queue_configure(bgs_engine *pEng, const char *zJson,
                                                  double rNow) {
  return bgs_queue_configure(pEng, zJson, (bgs_time)rNow);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_enqueue(bgs_engine *pEng, const char *zJson, const void *pBody,
                                          size_t nBody, double rNow, char **pzOut) {
  return bgs_enqueue(pEng, zJson, pBody, nBody, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_claim(bgs_engine *pEng, const char *zQueue, int nMax,
                                        double rNow, char **pzOut) {
  return bgs_claim(pEng, zQueue, nMax, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_claim_item(bgs_engine *pEng, const char *zQueue, double rId,
                                             double rNow, char **pzOut) {
  return bgs_claim_item(pEng, zQueue, (int64_t)rId, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_ahead(bgs_engine *pEng, const char *zQueue, double rNow,
                                        char **pzOut) {
  return bgs_ahead(pEng, zQueue, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_body(bgs_engine *pEng, double rId, unsigned char **ppBody,
                                       size_t *pnBody) {
  return bgs_body(pEng, (int64_t)rId, ppBody, pnBody);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_outcome(bgs_engine *pEng, const char *zJson, const void *pBody,
                                          size_t nBody, double rNow, char **pzOut) {
  return bgs_outcome(pEng, zJson, pBody, nBody, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_status(bgs_engine *pEng, const char *zQueue, double rNow,
                                         char **pzOut) {
  return bgs_status(pEng, zQueue, (bgs_time)rNow, pzOut);
}

/* ---- decisions (issue 3): dead letters, auth, batches; bgs_attempts is exported as is ---- */

EMSCRIPTEN_KEEPALIVE int bgs_wasm_dead_retry(bgs_engine *pEng, double rId, double rNow) {
  return bgs_dead_retry(pEng, (int64_t)rId, (bgs_time)rNow);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_dead_discard(bgs_engine *pEng, double rId, double rNow) {
  return bgs_dead_discard(pEng, (int64_t)rId, (bgs_time)rNow);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_auth_release(bgs_engine *pEng, const char *zQueue, double rNow,
                                               char **pzOut) {
  return bgs_auth_release(pEng, zQueue, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_claim_batch(bgs_engine *pEng, const char *zQueue, double rNow,
                                              char **pzOut, unsigned char **ppBody,
                                              size_t *pnBody) {
  return bgs_claim_batch(pEng, zQueue, (bgs_time)rNow, pzOut, ppBody, pnBody);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_batch_outcome(bgs_engine *pEng, const char *zJson,
                                                const void *pBody, size_t nBody, double rNow,
                                                char **pzOut) {
  return bgs_batch_outcome(pEng, zJson, pBody, nBody, (bgs_time)rNow, pzOut);
}

/* ---- conflicts (issue 4); bgs_conflicts and bgs_merge3 are exported as is ---- */

EMSCRIPTEN_KEEPALIVE int bgs_wasm_conflict_remote(bgs_engine *pEng, double rId, const char *zDoc,
                                                  const char *zVersion, double rNow,
                                                  char **pzOut) {
  return bgs_conflict_remote(pEng, (int64_t)rId, zDoc, zVersion, (bgs_time)rNow, pzOut);
}

EMSCRIPTEN_KEEPALIVE int bgs_wasm_conflict_resolve(bgs_engine *pEng, double rId,
                                                   const char *zJson, double rNow, char **pzOut) {
  return bgs_conflict_resolve(pEng, (int64_t)rId, zJson, (bgs_time)rNow, pzOut);
}
