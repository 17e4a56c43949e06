/*
 * errors.c -- names and messages of result codes, generated from BGS_ERRNO_MAP so the
 * enum, the strings and the JavaScript codes (read through bgs_errname) cannot drift.
 */
#include "bgsync.h"

const char *bgs_errstr(int rc) {
  switch (rc) {
#define BGS__MSG(name, value, code, msg) \
  case value:                            \
    return msg;
    BGS_ERRNO_MAP(BGS__MSG)
#undef BGS__MSG
  }
  return "unknown result code";
}

const char *bgs_errname(int rc) {
  switch (rc) {
#define BGS__CODE(name, value, code, msg) \
  case value:                             \
    return code;
    BGS_ERRNO_MAP(BGS__CODE)
#undef BGS__CODE
  }
  return 0;
}
