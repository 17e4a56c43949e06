# sqlite.cmake -- obtains the SQLite amalgamation reproducibly.
#
# SQLite has no Debian or npm package of its own that carries the amalgamation; the npm
# tarball of better-sqlite3 does (deps/sqlite3/). We pin that tarball's version, verify
# its checksum and the checksums of the two files we take, and cache them outside the
# build trees so the native and the WebAssembly builds share one copy. The files are
# never edited: every option is a compile-time define (see BGS_SQLITE_DEFINES).
#
# Sets BGS_SQLITE_DIR (holds sqlite3.c and sqlite3.h).

set(BGS_SQLITE_PACKAGE "better-sqlite3@13.2.0")
set(BGS_SQLITE_VERSION "3.54.1")
set(BGS_SQLITE_TGZ_SHA256 "40487589df3496f2ee0079d22b73c63fccebe7db0e8ee9a2c42421861e321e0b")
set(BGS_SQLITE_C_SHA256 "75a4760a7b9727a4c4c877aec92eacf39e52a8f2921ce00bd33be6d3a8e8e254")
set(BGS_SQLITE_H_SHA256 "d6c84557261893439b341d2e6c35187ae3ea24fbfd843ad94616f72d89242b8c")

set(BGS_CACHE_DIR "${CMAKE_CURRENT_LIST_DIR}/../../.cache" CACHE PATH "Downloads shared by builds")
get_filename_component(BGS_CACHE_DIR "${BGS_CACHE_DIR}" ABSOLUTE)
set(BGS_SQLITE_DIR "${BGS_CACHE_DIR}/sqlite-${BGS_SQLITE_VERSION}")

function(bgs_sqlite_verified out)
  set(ok FALSE)
  if(EXISTS "${BGS_SQLITE_DIR}/sqlite3.c" AND EXISTS "${BGS_SQLITE_DIR}/sqlite3.h")
    file(SHA256 "${BGS_SQLITE_DIR}/sqlite3.c" c_sum)
    file(SHA256 "${BGS_SQLITE_DIR}/sqlite3.h" h_sum)
    if(c_sum STREQUAL BGS_SQLITE_C_SHA256 AND h_sum STREQUAL BGS_SQLITE_H_SHA256)
      set(ok TRUE)
    endif()
  endif()
  set(${out} ${ok} PARENT_SCOPE)
endfunction()

bgs_sqlite_verified(BGS_SQLITE_OK)
if(NOT BGS_SQLITE_OK)
  message(STATUS "Fetching SQLite ${BGS_SQLITE_VERSION} from the npm tarball ${BGS_SQLITE_PACKAGE}")
  find_program(BGS_NPM npm REQUIRED)
  set(work "${BGS_CACHE_DIR}/sqlite-fetch")
  file(REMOVE_RECURSE "${work}")
  file(MAKE_DIRECTORY "${work}")
  execute_process(
    COMMAND "${BGS_NPM}" pack "${BGS_SQLITE_PACKAGE}" --silent --pack-destination "${work}"
    WORKING_DIRECTORY "${work}"
    OUTPUT_VARIABLE tgz_name OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE npm_rc)
  if(NOT npm_rc EQUAL 0)
    message(FATAL_ERROR "npm pack ${BGS_SQLITE_PACKAGE} failed (${npm_rc})")
  endif()
  file(GLOB tgz "${work}/*.tgz")
  file(SHA256 "${tgz}" tgz_sum)
  if(NOT tgz_sum STREQUAL BGS_SQLITE_TGZ_SHA256)
    message(FATAL_ERROR "checksum mismatch for ${tgz}: ${tgz_sum}")
  endif()
  file(ARCHIVE_EXTRACT INPUT "${tgz}" DESTINATION "${work}"
       PATTERNS package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h)
  file(MAKE_DIRECTORY "${BGS_SQLITE_DIR}")
  file(COPY "${work}/package/deps/sqlite3/sqlite3.c" "${work}/package/deps/sqlite3/sqlite3.h"
       DESTINATION "${BGS_SQLITE_DIR}")
  file(REMOVE_RECURSE "${work}")
  bgs_sqlite_verified(BGS_SQLITE_OK)
  if(NOT BGS_SQLITE_OK)
    file(REMOVE_RECURSE "${BGS_SQLITE_DIR}")
    message(FATAL_ERROR "checksum mismatch for the SQLite amalgamation from ${BGS_SQLITE_PACKAGE}")
  endif()
endif()

# The same options natively and in WebAssembly, so native tests exercise the shipped
# configuration. OS_OTHER: SQLite touches no file or clock except through vfs_mirror.c.
set(BGS_SQLITE_DEFINES
  SQLITE_OS_OTHER=1
  SQLITE_THREADSAFE=0
  SQLITE_TEMP_STORE=3
  SQLITE_DEFAULT_PAGE_SIZE=4096
  SQLITE_DEFAULT_MEMSTATUS=0
  SQLITE_DQS=0
  SQLITE_LIKE_DOESNT_MATCH_BLOBS
  SQLITE_MAX_EXPR_DEPTH=0
  SQLITE_OMIT_DEPRECATED
  SQLITE_OMIT_LOAD_EXTENSION
  SQLITE_OMIT_SHARED_CACHE
  SQLITE_OMIT_WAL
  SQLITE_OMIT_PROGRESS_CALLBACK
  SQLITE_OMIT_AUTHORIZATION
  SQLITE_OMIT_COMPLETE
  SQLITE_OMIT_GET_TABLE
  SQLITE_OMIT_TCL_VARIABLE
  SQLITE_OMIT_UTF16
  # Features the engine never uses, left out for size (tests/bench/README.md has the
  # figures). Kept on purpose: JSON, virtual tables (json_each/json_tree), window
  # functions (aggregate FILTER), CTEs, compound selects, pragmas.
  SQLITE_OMIT_LOCALTIME
  SQLITE_OMIT_INTROSPECTION_PRAGMAS
  SQLITE_OMIT_COMPILEOPTION_DIAGS
  SQLITE_OMIT_DECLTYPE
  SQLITE_OMIT_TRACE
  SQLITE_OMIT_INCRBLOB
  SQLITE_OMIT_AUTOVACUUM
  SQLITE_OMIT_INTEGRITY_CHECK
  SQLITE_OMIT_DESERIALIZE
  SQLITE_OMIT_BLOB_LITERAL
  SQLITE_OMIT_XFER_OPT
  SQLITE_OMIT_FLAG_PRAGMAS
  SQLITE_OMIT_SCHEMA_PRAGMAS
  SQLITE_OMIT_SHUTDOWN_DIRECTORIES
  SQLITE_OMIT_CASE_SENSITIVE_LIKE_PRAGMA
  SQLITE_UNTESTABLE
  SQLITE_USE_ALLOCA
  # Dates are parsed in core/src/dates.c (one ISO-8601 form, for newer-wins).
  SQLITE_OMIT_DATETIME_FUNCS
  # The schema declares no foreign keys or generated columns. The engine's joins go
  # through primary keys (or join per-queue summaries of a few rows), and its filters are
  # indexed columns compared with = and ranges (tests/bench/engine_bench.c prints the
  # claim's plans), so automatic indexes and the OR/LIKE/BETWEEN rewrites have nothing to
  # do. Hex literals are never written. Together with emmalloc (CMakeLists.txt) about
  # 11.5 KB of the gzipped module. (Lookaside, SQLite's cache of small allocations, was left
  # out with them for 0.5 KB gzip; it is back: every statement run allocates and frees
  # its cursors and registers, and without it that was 7% of an enqueue -> claim ->
  # complete cycle natively. Sanitizer builds still leave it out, below.)
  SQLITE_OMIT_FOREIGN_KEY
  SQLITE_OMIT_GENERATED_COLUMNS
  SQLITE_OMIT_AUTOMATIC_INDEX
  SQLITE_OMIT_OR_OPTIMIZATION
  SQLITE_OMIT_LIKE_OPTIMIZATION
  SQLITE_OMIT_BETWEEN_OPTIMIZATION
  SQLITE_OMIT_HEX_INTEGER
  # Statements the engine never issues. The parser still knows them: their actions land in
  # core/sqlite/amalgamation.c, which fails the statement with "not supported". The schema
  # has no CHECK constraints or AUTOINCREMENT columns and no upsert (INSERT OR ...
  # instead). About 16 KB of the gzipped module; EXPLAIN goes too, in the module only
  # (CMakeLists.txt).
  SQLITE_OMIT_ALTERTABLE
  SQLITE_OMIT_ANALYZE
  SQLITE_OMIT_ATTACH
  SQLITE_OMIT_REINDEX
  SQLITE_OMIT_VACUUM
  SQLITE_OMIT_VIEW
  SQLITE_OMIT_CHECK
  SQLITE_OMIT_AUTOINCREMENT
  SQLITE_OMIT_UPSERT
  # Triggers, and with them RETURNING (built on triggers; the engine reads a row before
  # changing it instead, and core/src/engine.c refuses SQL that asks for RETURNING).
  SQLITE_OMIT_TRIGGER)

# AddressSanitizer sees into heap blocks, not into lookaside slots: there a column's text
# read after its statement was reset would go unnoticed. The sanitizer and fuzz builds
# keep every allocation on the heap.
if(BGS_SANITIZE OR BGS_FUZZ)
  list(APPEND BGS_SQLITE_DEFINES SQLITE_OMIT_LOOKASIDE)
endif()
