/*
 * names.c -- the external names of item states and priorities (JSON, JavaScript).
 * Order must match the enums in internal.h.
 */
#include <string.h>

#include "internal.h"

static const char *const azState[BGS__ST_COUNT] = {"pending",  "waiting", "inflight", "done",
                                                   "conflict", "dead",    "auth"};
static const char *const azPriority[4] = {"critical", "high", "normal", "low"};

static int name_index(const char *const *az, int n, const char *zName) {
  int i;
  if (zName == NULL) return -1;
  for (i = 0; i < n; i++) {
    if (strcmp(az[i], zName) == 0) return i;
  }
  return -1;
}

const char *bgs__state_name(int eState) {
  return (eState >= 0 && eState < BGS__ST_COUNT) ? azState[eState] : "unknown";
}

int bgs__state_from_name(const char *zName) { return name_index(azState, BGS__ST_COUNT, zName); }

const char *bgs__priority_name(int ePri) { return (ePri >= 0 && ePri < 4) ? azPriority[ePri] : "normal"; }

int bgs__priority_from_name(const char *zName) { return name_index(azPriority, 4, zName); }
