/*
 * tests/support/testdb.c: scratch databases, child-process runner and query helpers for the
 * integration tests (see testdb.h). Runs in the test process.
 */
#include "tests/support/testdb.h"

#include "common/pgsession.h"
#include "common/util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *testdb_base_conninfo(void)
{
    const char *base = getenv("TEST_PG_CONNINFO");
    if (base == NULL || *base == '\0')
        fail_msg("TEST_PG_CONNINFO is not set (e.g. \"host=127.0.0.1 port=5436 user=app "
                 "password=app sslmode=disable\")");
    return base;
}

/* A session on the maintenance database "postgres", for CREATE/DROP DATABASE. */
static PGconn *testdb_admin_connect(void)
{
    char *ci = xasprintf("%s dbname=postgres", testdb_base_conninfo());
    PGconn *conn = PQconnectdb(ci);
    free(ci);
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("cannot connect to TEST_PG_CONNINFO: %s", msg);
    }
    return conn;
}

void testdb_create(testdb *db)
{
    static unsigned counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(db, 0, sizeof(*db));
    snprintf(db->name, sizeof(db->name), "adtest_%d_%u_%lx", (int)getpid(), ++counter,
             (unsigned long)(ts.tv_nsec & 0xfffff));
    PGconn *admin = testdb_admin_connect();
    char *sql = xasprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING 'UTF8'", db->name);
    PGresult *res = PQexec(admin, sql);
    free(sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
    PQclear(res);
    PQfinish(admin);
    if (!ok)
        fail_msg("CREATE DATABASE %s failed: %s", db->name, msg);
    db->conninfo = xasprintf("%s dbname=%s", testdb_base_conninfo(), db->name);
}

void testdb_drop(testdb *db)
{
    if (db->conninfo == NULL)
        return;
    PGconn *admin = testdb_admin_connect();
    char *sql = xasprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", db->name);
    PQclear(PQexec(admin, sql));
    free(sql);
    PQfinish(admin);
    free(db->conninfo);
    memset(db, 0, sizeof(*db));
}

PGconn *testdb_connect(const testdb *db)
{
    PGconn *conn = pgsession_connect(db->conninfo, "test");
    if (conn == NULL)
        fail_msg("cannot connect to scratch database %s", db->name);
    return conn;
}

/* Reads the whole of an (unlinked temporary) file from the start into a heap string. */
static char *testdb_slurp(FILE *f)
{
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    rewind(f);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    buf[len] = '\0';
    return buf;
}

void testdb_run_analyticsd(const char *const *args, const char *const *env, int timeout_s,
                           testdb_proc *p)
{
    const char *bin = getenv("ANALYTICSD_BIN");
    if (bin == NULL || *bin == '\0')
        fail_msg("ANALYTICSD_BIN is not set (path of the analyticsd executable)");
    memset(p, 0, sizeof(*p));
    FILE *out = tmpfile(), *err = tmpfile();
    if (out == NULL || err == NULL)
        fail_msg("tmpfile: %s", strerror(errno));
    fflush(stdout);
    fflush(stderr);

    size_t nargs = 0;
    while (args != NULL && args[nargs] != NULL)
        nargs++;
    char **argv = xcalloc(nargs + 2, sizeof(char *));
    argv[0] = (char *)bin;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = (char *)args[i];

    pid_t pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
            const char *eq = strchr(env[i], '=');
            if (eq == NULL) {
                unsetenv(env[i]);
            } else {
                char *name = xstrndup(env[i], (size_t)(eq - env[i]));
                setenv(name, eq + 1, 1);
                free(name);
            }
        }
        dup2(fileno(out), STDOUT_FILENO);
        dup2(fileno(err), STDERR_FILENO);
        execv(bin, argv);
        _exit(127);
    }
    free(argv);

    int wstatus = 0;
    int64_t deadline = clock_monotonic_ns() + (int64_t)timeout_s * 1000000000LL;
    p->status = -1;
    for (;;) {
        pid_t r = waitpid(pid, &wstatus, WNOHANG);
        if (r == pid) {
            p->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
            break;
        }
        if (r < 0 && errno != EINTR)
            break;
        if (clock_monotonic_ns() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &wstatus, 0);
            break;
        }
        usleep(5000);
    }
    p->out = testdb_slurp(out);
    p->err = testdb_slurp(err);
    fclose(out);
    fclose(err);
}

void testdb_proc_free(testdb_proc *p)
{
    free(p->out);
    free(p->err);
    p->out = p->err = NULL;
}

/* Runs sql and returns the result if it succeeded; otherwise fails the test. */
static PGresult *testdb_must(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("SQL failed: %s\n  statement: %s", msg, sql);
    }
    return res;
}

void testdb_exec(PGconn *conn, const char *sql)
{
    PQclear(testdb_must(conn, sql));
}

static void testdb_quiet_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

int testdb_try_exec(PGconn *conn, const char *sql)
{
    PQnoticeProcessor old = PQsetNoticeProcessor(conn, testdb_quiet_notice, NULL);
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    PQsetNoticeProcessor(conn, old, NULL);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

char *testdb_query_text(PGconn *conn, const char *sql)
{
    PGresult *res = testdb_must(conn, sql);
    char *v = NULL;
    if (PQntuples(res) > 0 && PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
        v = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

int64_t testdb_query_int(PGconn *conn, const char *sql)
{
    char *v = testdb_query_text(conn, sql);
    if (v == NULL)
        fail_msg("query returned no value: %s", sql);
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    int ok = end != v && *end == '\0';
    free(v);
    if (!ok)
        fail_msg("query did not return an integer: %s", sql);
    return (int64_t)n;
}
