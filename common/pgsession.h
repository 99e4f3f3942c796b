/*
 * common/pgsession.h: how every PostgreSQL session of every process is opened (DATA.md §1,
 * CONFIG.md §3.6): connection parameters, the 5 s connect limit, and the session settings.
 * The blocking connect is used by migrate, seed, the recompute workers and the supervisor;
 * HTTP workers use the same parameters and setup SQL through their asynchronous pool. Also
 * the blocking statement helper (pgsession_exec) of those processes, which the supervisor
 * makes interruptible by its stop signal (pgsession_set_interrupt_fd).
 */
#ifndef ANALYTICSD_PGSESSION_H
#define ANALYTICSD_PGSESSION_H

#include <libpq-fe.h>
#include <stdint.h>

/* Keyword/value arrays for PQconnectdbParams / PQconnectStartParams with expand_dbname = 1. */
typedef struct pgsession_params {
    const char *keywords[3];
    const char *values[3];
    char timeout[24];
} pgsession_params;

/*
 * Fills p so that `url` (URI or keyword=value string) is honoured entirely, except that the
 * connection attempt is bounded by 5 s or the URL's own smaller connect_timeout.
 * p keeps a pointer to url; both must outlive the connect call.
 */
void pgsession_params_init(pgsession_params *p, const char *url);

/*
 * The statements a session runs before its first statement: TimeZone, DateStyle,
 * client_encoding, application_name 'pg-analytics-service:<role>:<pid>' and, for the "http"
 * role, statement_timeout = 30s. Returns a heap string the caller frees.
 */
char *pgsession_setup_sql(const char *role);

/*
 * Blocking connect plus setup SQL. Returns the connection, or NULL after logging why (the log
 * line carries libpq's message, never the URL or password).
 */
PGconn *pgsession_connect(const char *url, const char *role);

/*
 * Runs one statement with text parameters and checks its status: returns the result when it
 * is PGRES_COMMAND_OK or PGRES_TUPLES_OK (the caller PQclears it), otherwise logs
 * "<what>: <server message>" and returns NULL.
 */
PGresult *pgsession_exec(PGconn *conn, const char *what, const char *sql, int nparams,
                         const char *const *params);

/* pgsession_exec for a statement whose rows nobody reads: 0, or -1 after the same log line. */
int pgsession_command(PGconn *conn, const char *what, const char *sql, int nparams,
                      const char *const *params);

/*
 * A session that reconnects by itself, at most once per `interval_ns`: for a process that keeps
 * one session for its whole life (the supervisor, the scheduler's leader).
 */
typedef struct pgsession_kept {
    PGconn *conn;            /* NULL while not connected */
    int64_t last_connect_ns; /* monotonic time of the last attempt; 0: none yet */
} pgsession_kept;

/*
 * The kept session: drops it when its connection broke (logging `<role>: database session
 * lost; reconnecting`), and when there is none and the last attempt is interval_ns old or
 * more, tries pgsession_connect(url, role) once. Returns the session or NULL (unreachable).
 */
PGconn *pgsession_kept_get(pgsession_kept *k, const char *url, const char *role,
                           int64_t interval_ns);

/* Closes the kept session, if any. */
void pgsession_kept_close(pgsession_kept *k);

/*
 * Makes every later pgsession_exec of this process interruptible by `fd` (-1: not, the
 * default): while a statement runs, pgsession_exec also polls fd, and once fd is readable it
 * sends the server a cancel request and returns the cancellation as a failed statement (NULL,
 * logged), so a long statement no longer delays a graceful stop. The fd is only polled, never
 * read. The supervisor passes its stop signalfd (worker/stopsignal.h).
 */
void pgsession_set_interrupt_fd(int fd);

#endif
