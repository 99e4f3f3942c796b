/*
 * tests/support/testdb.h: helpers for the cmocka integration tests (run in the test process):
 * scratch PostgreSQL databases made from TEST_PG_CONNINFO, running the analyticsd binary
 * (ANALYTICSD_BIN) with extra environment variables, and small query helpers.
 *
 * Helpers that say "fails the test" call cmocka's fail_msg(), so they may only be used from
 * inside a running cmocka test (or its setup/teardown).
 */
#ifndef ANALYTICSD_TESTDB_H
#define ANALYTICSD_TESTDB_H

#include <libpq-fe.h>
#include <stdint.h>

typedef struct testdb {
    char name[64];  /* database name, e.g. "adtest_1234_1_5f3a" */
    char *conninfo; /* TEST_PG_CONNINFO plus " dbname=<name>" (heap) */
} testdb;

/*
 * Creates a uniquely named empty database (UTF8, from template0) and fills *db.
 * Fails the test when TEST_PG_CONNINFO is unset or the database cannot be created.
 */
void testdb_create(testdb *db);

/* Drops the database (WITH (FORCE): open sessions are terminated) and frees *db. Idempotent. */
void testdb_drop(testdb *db);

/*
 * Opens a session on the scratch database with the service's session settings (UTC, ISO
 * dates, role "test"). Fails the test when the connection cannot be made.
 */
PGconn *testdb_connect(const testdb *db);

/* Outcome of a child process. */
typedef struct testdb_proc {
    int status; /* exit code; 128 + signal when killed; -1 when it timed out */
    char *out;  /* everything written to stdout (heap, NUL-terminated) */
    char *err;  /* everything written to stderr (heap, NUL-terminated) */
} testdb_proc;

/*
 * Runs $ANALYTICSD_BIN with argv[1..] = args (NULL-terminated) and the test's environment
 * changed by env (NULL-terminated; "NAME=VALUE" sets, "NAME" alone unsets). The child is killed
 * after timeout_s seconds. Fills *p (free with testdb_proc_free). Fails the test when
 * ANALYTICSD_BIN is unset or the process cannot be started.
 */
void testdb_run_analyticsd(const char *const *args, const char *const *env, int timeout_s,
                           testdb_proc *p);
void testdb_proc_free(testdb_proc *p);

/* Runs sql (no parameters, may hold several statements); fails the test on any error. */
void testdb_exec(PGconn *conn, const char *sql);

/* Runs sql; returns 1 if it succeeded, 0 if the server reported an error (nothing logged). */
int testdb_try_exec(PGconn *conn, const char *sql);

/*
 * First column of the first row as a heap string (caller frees); NULL when there is no row or
 * the value is SQL NULL. Fails the test on an SQL error.
 */
char *testdb_query_text(PGconn *conn, const char *sql);

/* First column of the first row as an integer; fails the test on error, no row or NULL. */
int64_t testdb_query_int(PGconn *conn, const char *sql);

#endif
