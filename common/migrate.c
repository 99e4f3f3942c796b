/*
 * common/migrate.c: the migration runner of DATA.md §2.1 (see migrate.h). Runs in the
 * `analyticsd migrate` process and in the master at startup when APP_AUTO_MIGRATE is true.
 *
 * Order of work: session advisory lock, bookkeeping table, then each embedded script not yet
 * recorded, each in its own transaction with its schema_migrations row. The lock is released
 * before returning, whatever happened, so the connection can be reused by the caller.
 */
#include "common/migrate.h"

#include "common/log.h"
#include "common/pgsession.h"

#include <stdbool.h>
#include <string.h>

#define MIGRATE_LOCK_KEY "hashtextextended('pg-analytics-service:migrations', 0)"

/*
 * Creates schema_migrations if missing (not part of any script). Checked first so that an
 * up-to-date database produces no "already exists" notice. Returns 0 or -1.
 */
static int migrate_ensure_table(PGconn *conn)
{
    PGresult *res = pgsession_exec(conn, "migrate: looking for schema_migrations",
                                   "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL);
    if (res == NULL)
        return -1;
    bool exists = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (exists)
        return 0;
    return pgsession_command(conn, "migrate: creating schema_migrations",
                             "CREATE TABLE IF NOT EXISTS schema_migrations ("
                             "version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)",
                             0, NULL);
}

/* Sets *applied to whether `version` is recorded in schema_migrations. Returns 0 or -1. */
static int migrate_is_applied(PGconn *conn, const char *version, bool *applied)
{
    const char *params[1] = {version};
    PGresult *res = pgsession_exec(conn, "migrate: reading schema_migrations",
                                   "SELECT 1 FROM schema_migrations WHERE version = $1", 1, params);
    if (res == NULL)
        return -1;
    *applied = PQntuples(res) > 0;
    PQclear(res);
    return 0;
}

/* Applies one script and its bookkeeping row in one transaction. Returns 0 or -1 (rolled back). */
static int migrate_apply(PGconn *conn, const struct migration_script *m)
{
    if (pgsession_command(conn, "migrate: BEGIN", "BEGIN", 0, NULL) != 0)
        return -1;
    /* PQexec (simple protocol) because a script holds several statements. */
    PGresult *res = PQexec(conn, m->sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *msg = PQresultErrorMessage(res);
        if (msg == NULL || *msg == '\0')
            msg = PQerrorMessage(conn);
        log_error("migrate: %s failed: %.*s", m->version, (int)strcspn(msg, "\n"), msg);
        PQclear(res);
        goto rollback;
    }
    PQclear(res);
    const char *params[1] = {m->version};
    res = pgsession_exec(conn, "migrate: recording version",
                         "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())",
                         1, params);
    if (res == NULL)
        goto rollback;
    PQclear(res);
    if (pgsession_command(conn, "migrate: COMMIT", "COMMIT", 0, NULL) != 0)
        goto rollback;
    log_info("migrate: applied %s", m->version);
    return 0;

rollback:
    res = PQexec(conn, "ROLLBACK");
    PQclear(res);
    return -1;
}

int migrate_run(PGconn *conn)
{
    if (pgsession_command(conn, "migrate: taking the migrations lock",
                          "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL) != 0)
        return -1;
    int rc = migrate_ensure_table(conn);
    size_t applied_now = 0;
    for (size_t i = 0; rc == 0 && i < migrations_count; i++) {
        bool applied = false;
        rc = migrate_is_applied(conn, migrations[i].version, &applied);
        if (rc == 0 && !applied) {
            rc = migrate_apply(conn, &migrations[i]);
            if (rc == 0)
                applied_now++;
        }
    }
    PGresult *res = PQexec(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")");
    PQclear(res);
    if (rc != 0) {
        log_error("migrate: stopped after applying %zu script(s)", applied_now);
        return -1;
    }
    log_info("migrate: database up to date, %zu script(s) applied", applied_now);
    return 0;
}
