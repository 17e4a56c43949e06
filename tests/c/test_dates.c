/* test_dates.c -- the ISO-8601 timestamps newer-wins reads from a server's document. */
#include "check.h"
#include "internal.h"
#include "support.h"

/* Expected values are Date.parse() of the same instants. */
TEST(test_iso_time_reads_dates_times_fractions_and_offsets) {
  CHECK_EQ_I64(bgs__iso_time_parse("2030-01-01T00:00:00Z"), 1893456000000LL);
  CHECK_EQ_I64(bgs__iso_time_parse("2024-02-29"), 1709164800000LL);
  CHECK_EQ_I64(bgs__iso_time_parse("2024-02-29 13:45"), 1709214300000LL);
  CHECK_EQ_I64(bgs__iso_time_parse("2024-02-29T13:45:30.250Z"), 1709214330250LL);
  /* Digits past the millisecond are dropped; the offset moves the instant. */
  CHECK_EQ_I64(bgs__iso_time_parse("2024-02-29T13:45:30.2509+02:00"), 1709207130250LL);
  CHECK_EQ_I64(bgs__iso_time_parse("2024-03-01T01:00:00-05:30"), 1709274600000LL);
  CHECK_EQ_I64(bgs__iso_time_parse("1969-12-31T23:59:59Z"), -1000);
}

TEST(test_iso_time_rejects_what_is_not_a_timestamp) {
  static const char *const azBad[] = {
      "",          "soon",        "2024-2-29",         "2024-13-01",        "2024-00-10",
      "2024-01-32", "2024-01-01T25:00", "2024-01-01T10:60", "2024-01-01T10:00:61",
      "2024-01-01T10", "2024-01-01Tx", "2024-01-01T10:00+0200", "2024-01-01T10:00:00Q",
      "1709214300000", "2024-01-01 garbage"};
  size_t i;
  CHECK_EQ_I64(bgs__iso_time_parse(NULL), -1);
  for (i = 0; i < sizeof(azBad) / sizeof(azBad[0]); i++) {
    if (bgs__iso_time_parse(azBad[i]) != -1) {
      fprintf(stderr, "accepted '%s'\n", azBad[i]);
      CHECK(0);
    }
  }
}
