/*
 * common/migrate.h: the migration runner of DATA.md §2.1. Run by `analyticsd migrate` and by
 * the master at startup when APP_AUTO_MIGRATE is true. The scripts are the .sql files of schema/,
 * compiled into the program by cmake/embed_sql.cmake (generated migrations_embedded.c).
 */
#ifndef ANALYTICSD_MIGRATE_H
#define ANALYTICSD_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

struct migration_script {
    const char *version; /* file name, e.g. "0001_init.sql" */
    const char *sql;     /* whole script, NUL-terminated */
};

/* The embedded scripts in ascending version order, then a {NULL, NULL} terminator. */
extern const struct migration_script migrations[];
extern const size_t migrations_count;

/*
 * Applies every embedded script whose version is not yet in schema_migrations, each in its own
 * transaction with its bookkeeping row, under the migrations advisory lock. Returns 0 when the
 * database is up to date (logging how many scripts were applied), -1 after logging the failure;
 * scripts applied before a failing one stay applied.
 */
int migrate_run(PGconn *conn);

#endif
