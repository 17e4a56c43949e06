/* check_main.c -- runs one registered test by name, or all of them. */
#include "check.h"

#define MAX_TESTS 512

static struct {
  const char *zName;
  check_fn fn;
} aTest[MAX_TESTS];
static int nTest = 0;

void check_register(const char *zName, check_fn fn) {
  if (nTest < MAX_TESTS) {
    aTest[nTest].zName = zName;
    aTest[nTest].fn = fn;
    nTest++;
  }
}

int main(int argc, char **argv) {
  int i, nRun = 0;
  for (i = 0; i < nTest; i++) {
    if (argc > 1 && strcmp(argv[1], aTest[i].zName) != 0) continue;
    aTest[i].fn();
    nRun++;
  }
  if (nRun == 0) {
    fprintf(stderr, "no test named %s\n", argc > 1 ? argv[1] : "(any)");
    return 2;
  }
  return 0;
}
