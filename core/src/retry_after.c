/*
 * retry_after.c -- parsing of the Retry-After header (RFC 9110 10.2.3): delta-seconds
 * or an HTTP date in IMF-fixdate form. The obsolete date forms are rare enough to be
 * treated as invalid, which makes the header be ignored (plain backoff applies).
 */
#include <string.h>

#include "internal.h"

static const char *const azMonth[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Reads exactly n digits. */
static int digits(const char *z, int n, int *pOut) {
  int i, v = 0;
  for (i = 0; i < n; i++) {
    if (z[i] < '0' || z[i] > '9') return 0;
    v = v * 10 + (z[i] - '0');
  }
  *pOut = v;
  return 1;
}

/* "Sun, 06 Nov 1994 08:49:37 GMT": exactly 29 characters. */
static bgs_time imf_fixdate(const char *z) {
  int day, year, hh, mm, ss, mon = -1, i;
  if (strlen(z) != 29) return -1;
  if (z[3] != ',' || z[4] != ' ' || z[7] != ' ' || z[11] != ' ' || z[16] != ' ' ||
      z[19] != ':' || z[22] != ':' || z[25] != ' ' || strcmp(z + 26, "GMT") != 0) {
    return -1;
  }
  for (i = 0; i < 12; i++) {
    if (strncmp(z + 8, azMonth[i], 3) == 0) mon = i + 1;
  }
  if (mon < 0 || !digits(z + 5, 2, &day) || !digits(z + 12, 4, &year) ||
      !digits(z + 17, 2, &hh) || !digits(z + 20, 2, &mm) || !digits(z + 23, 2, &ss)) {
    return -1;
  }
  if (day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60) return -1;
  return (bgs__days_from_civil(year, mon, day) * 86400 + hh * 3600 + mm * 60 + ss) * 1000;
}

bgs_time bgs__retry_after_parse(const char *zValue, bgs_time now) {
  const char *z = zValue;
  int64_t nSec = 0;
  int nDigit = 0;
  if (z == NULL) return -1;
  while (*z == ' ' || *z == '\t') z++;
  if (*z >= '0' && *z <= '9') {
    for (; *z >= '0' && *z <= '9'; z++) {
      /* Beyond ten digits (300 years) the server is not asking for a real delay. */
      if (++nDigit > 10) return -1;
      nSec = nSec * 10 + (*z - '0');
    }
    while (*z == ' ' || *z == '\t') z++;
    return *z == 0 ? now + nSec * 1000 : -1;
  }
  return imf_fixdate(z);
}
