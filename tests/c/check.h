/*
 * check.h -- a minimal test harness. TEST(test_name) defines a test and registers it;
 * tests/c/CMakeLists.txt finds the names and makes each one a CTest test, run as
 * `<binary> test_name`. A failed CHECK prints where and exits non-zero.
 */
#ifndef BGS_CHECK_H
#define BGS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*check_fn)(void);
void check_register(const char *zName, check_fn fn);

#define TEST(name)                                                                    \
  static void name(void);                                                             \
  __attribute__((constructor)) static void name##_register(void) {                    \
    check_register(#name, name);                                                      \
  }                                                                                   \
  static void name(void)

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);        \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#define CHECK_RC(expr, want)                                                          \
  do {                                                                                \
    int rc_ = (expr);                                                                 \
    if (rc_ != (want)) {                                                              \
      fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s)\n", __FILE__, __LINE__, \
              #expr, rc_, bgs_errname(rc_), (int)(want), bgs_errname(want));         \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#define CHECK_OK(expr) CHECK_RC(expr, BGS_OK)

#define CHECK_EQ_I64(a, b)                                                            \
  do {                                                                                \
    long long a_ = (long long)(a), b_ = (long long)(b);                               \
    if (a_ != b_) {                                                                   \
      fprintf(stderr, "%s:%d: %s == %lld, want %lld\n", __FILE__, __LINE__, #a, a_, b_); \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#define CHECK_STR(a, b)                                                               \
  do {                                                                                \
    const char *a_ = (a), *b_ = (b);                                                  \
    if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                            \
      fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", __FILE__, __LINE__, #a,   \
              a_ ? a_ : "(null)", b_ ? b_ : "(null)");                               \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

#endif
