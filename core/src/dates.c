/*
 * dates.c -- calendar arithmetic and the ISO-8601 timestamps a server's documents carry
 * (conflict.timeField, default "updatedAt", for newer-wins). Done here rather than with
 * SQLite's date functions, which the build leaves out (SQLITE_OMIT_DATETIME_FUNCS: about
 * 5 KB of the gzipped module, for this one parse).
 */
#include "internal.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
   A day past the month's end rolls over into the next month, as SQLite's dates did. */
int64_t bgs__days_from_civil(int64_t y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/* Reads exactly n digits at *pz and moves past them; 0 if they are not there. */
static int fixed_digits(const char **pz, int n, int *pOut) {
  int i, v = 0;
  for (i = 0; i < n; i++) {
    char c = (*pz)[i];
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  *pz += n;
  *pOut = v;
  return 1;
}

/*
 * "YYYY-MM-DD", optionally followed by "T" or a space and "HH:MM", ":SS", ".fraction"
 * (milliseconds kept, further digits ignored), then "Z" or "+HH:MM"/"-HH:MM" (none means
 * UTC). The forms SQLite's julianday() took for these strings, which the engine used
 * before. Returns milliseconds since the epoch, or -1 for anything else.
 */
int64_t bgs__iso_time_parse(const char *z) {
  int y, mo, d, h = 0, mi = 0, s = 0, ms = 0, tzh = 0, tzm = 0, tzSign = 0;
  if (z == NULL) return -1;
  while (*z == ' ') z++;
  if (!fixed_digits(&z, 4, &y) || *z++ != '-' || !fixed_digits(&z, 2, &mo) || *z++ != '-' ||
      !fixed_digits(&z, 2, &d)) {
    return -1;
  }
  if ((*z == 'T' || *z == ' ') && z[1] >= '0' && z[1] <= '9') {
    z++;
    if (!fixed_digits(&z, 2, &h) || *z++ != ':' || !fixed_digits(&z, 2, &mi)) return -1;
    if (*z == ':') {
      z++;
      if (!fixed_digits(&z, 2, &s)) return -1;
      if (*z == '.' && z[1] >= '0' && z[1] <= '9') {
        int scale = 100;
        for (z++; *z >= '0' && *z <= '9'; z++, scale /= 10) ms += (*z - '0') * scale;
      }
    }
  }
  while (*z == ' ') z++;
  if (*z == 'Z' || *z == 'z') {
    z++;
  } else if (*z == '+' || *z == '-') {
    tzSign = *z++ == '-' ? -1 : 1;
    if (!fixed_digits(&z, 2, &tzh) || *z++ != ':' || !fixed_digits(&z, 2, &tzm)) return -1;
    if (tzh > 14 || tzm > 59) return -1;
  }
  while (*z == ' ') z++;
  if (*z != 0) return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 24 || mi > 59 || s > 59) return -1;
  return ((bgs__days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + s * 1000 + ms -
         (int64_t)tzSign * (tzh * 60 + tzm) * 60000;
}
