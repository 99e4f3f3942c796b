/*
 * common/pgsession.c: session parameters and blocking connect (see pgsession.h).
 * Runs in migrate, seed, recompute workers and the supervisor; HTTP workers reuse the params.
 */
#include "common/pgsession.h"

#include <errno.h>
#include <poll.h>

#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PGSESSION_CONNECT_TIMEOUT_S 5

void pgsession_params_init(pgsession_params *p, const char *url)
{
    long timeout = PGSESSION_CONNECT_TIMEOUT_S;
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (opts != NULL) {
        for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
            if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL) {
                long v = strtol(o->val, NULL, 10);
                /* libpq treats values below 2 (other than 0 = forever) as 2. */
                if (v > 0 && v < timeout)
                    timeout = v < 2 ? 2 : v;
            }
        }
        PQconninfoFree(opts);
    }
    snprintf(p->timeout, sizeof(p->timeout), "%ld", timeout);
    /* Later keywords override what the expanded dbname string sets. */
    p->keywords[0] = "dbname";
    p->values[0] = url;
    p->keywords[1] = "connect_timeout";
    p->values[1] = p->timeout;
    p->keywords[2] = NULL;
    p->values[2] = NULL;
}

char *pgsession_setup_sql(const char *role)
{
    int is_http = strcmp(role, "http") == 0;
    return xasprintf("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                     "SET client_encoding = 'UTF8'; "
                     "SET application_name = 'pg-analytics-service:%s:%d'%s",
                     role, (int)getpid(), is_http ? "; SET statement_timeout = '30s'" : "");
}

PGconn *pgsession_connect(const char *url, const char *role)
{
    pgsession_params p;
    pgsession_params_init(&p, url);
    PGconn *conn = PQconnectdbParams(p.keywords, p.values, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
        log_error("postgres connection failed: %.*s", (int)strcspn(msg, "\n"), msg);
        PQfinish(conn);
        return NULL;
    }
    char *sql = pgsession_setup_sql(role);
    PGresult *res = PQexec(conn, sql);
    free(sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *msg = PQerrorMessage(conn);
        log_error("postgres session setup failed: %.*s", (int)strcspn(msg, "\n"), msg);
        PQclear(res);
        PQfinish(conn);
        return NULL;
    }
    PQclear(res);
    return conn;
}

static int interrupt_fd = -1;

void pgsession_set_interrupt_fd(int fd)
{
    interrupt_fd = fd;
}

/* Sends the statement, then waits in poll() for the server and for interrupt_fd; when the fd
 * becomes readable first, asks the server to cancel the statement (its result is then the
 * cancellation error). Returns the last result, like PQexecParams (NULL only on OOM). */
static PGresult *exec_interruptible(PGconn *conn, const char *what, const char *sql, int nparams,
                                    const char *const *params)
{
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
    int cancelled = 0;
    PGresult *last = NULL;
    for (;;) {
        while (!PQisBusy(conn)) {
            PGresult *r = PQgetResult(conn);
            if (r == NULL)
                return last;
            PQclear(last);
            last = r;
        }
        struct pollfd pfd[2] = {{PQsocket(conn), POLLIN, 0}, {interrupt_fd, POLLIN, 0}};
        int n = poll(pfd, cancelled ? 1 : 2, -1);
        if (n < 0 && errno != EINTR)
            break;
        if (!cancelled && (pfd[1].revents & POLLIN)) {
            cancelled = 1;
            log_info("%s: cancelling (shutting down)", what);
            PGcancel *c = PQgetCancel(conn);
            char err[256];
            if (c == NULL || !PQcancel(c, err, sizeof(err)))
                log_warn("%s: cancel request failed", what);
            PQfreeCancel(c);
        }
        if ((pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn))
            break;
    }
    PQclear(last);
    return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR); /* the connection broke */
}

PGresult *pgsession_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                         const char *const *params)
{
    PGresult *res = interrupt_fd < 0 ? PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)
                                     : exec_interruptible(conn, what, sql, nparams, params);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    const char *msg = PQresultErrorMessage(res);
    if (msg == NULL || *msg == '\0')
        msg = PQerrorMessage(conn);
    log_error("%s: %.*s", what, (int)strcspn(msg, "\n"), msg);
    PQclear(res);
    return NULL;
}

int pgsession_command(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params)
{
    PGresult *res = pgsession_exec(conn, what, sql, nparams, params);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

PGconn *pgsession_kept_get(pgsession_kept *k, const char *url, const char *role,
                           int64_t interval_ns)
{
    if (k->conn != NULL && PQstatus(k->conn) != CONNECTION_OK) {
        log_warn("%s: database session lost; reconnecting", role);
        pgsession_kept_close(k);
    }
    int64_t now = clock_monotonic_ns();
    if (k->conn == NULL && (k->last_connect_ns == 0 || now - k->last_connect_ns >= interval_ns)) {
        k->last_connect_ns = now;
        k->conn = pgsession_connect(url, role);
    }
    return k->conn;
}

void pgsession_kept_close(pgsession_kept *k)
{
    if (k->conn != NULL)
        PQfinish(k->conn);
    k->conn = NULL;
}
