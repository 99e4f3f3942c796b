/*
 * common/pgpool.h: non-blocking PostgreSQL access for the HTTP worker processes, driven by the
 * worker's libh2o 2.2.5 event loop (architecture.md §2.6). Owns a small per-process pool of
 * libpq connections opened on demand, a bounded FIFO of waiting requests, per-query deadlines,
 * and the behaviour when PostgreSQL is down (API.md §7.2).
 *
 * Threading: everything runs on the loop's thread; nothing here blocks (no PQexec,
 * PQconnectdb or PQcancel). Host names in the URL are resolved by libpq inside
 * PQconnectPoll, which blocks: give DATABASE_URL an IP address or a Unix socket directory.
 *
 * Sessions: every connection runs pgsession_setup_sql(role) right after connecting, before
 * any other statement (TimeZone UTC, application_name, statement_timeout 30 s for "http").
 * A connection attempt, including that setup, is abandoned after the pgsession connect limit
 * (5 s or the URL's smaller connect_timeout).
 *
 * Ownership (what the caller may keep, and for how long):
 *  - pgpool: created by pgpool_create, freed by pgpool_destroy. Everything below is owned by
 *    the pool and freed by it.
 *  - pgpool_query handles: valid from the call that returned them until their callback has
 *    returned or pgpool_cancel has been called, whichever comes first. Callers keep the handle
 *    only to cancel, and must forget it in their callback.
 *  - PGresult passed to a pgpool_cb (a result or an error result): borrowed for the duration
 *    of the callback; the pool PQclears it afterwards. Copy what you need.
 *  - pgpool_conn from pgpool_acquire: the caller's until pgpool_release; then the pool's.
 *  - SQL strings and parameters are copied; the caller's strings may die after the call.
 *
 * Callbacks are never called from inside the function that registers them (they run from the
 * event loop), so a caller always holds the handle before its callback can run. Callbacks may
 * call any function of this module except pgpool_destroy.
 *
 * Failure reporting: every callback gets a pgpool_status saying why it was called, so a caller
 * picks its answer without asking the database again; the server's message is logged (under
 * the request id of the statement). A statement error carries the server's error result, whose
 * SQLSTATE is PQresultErrorField(res, PG_DIAG_SQLSTATE). Statements whose outcome is part of
 * the normal flow (e.g. a scope that already has a run) are still best written so that success
 * shows in the rows (INSERT ... ON CONFLICT DO NOTHING RETURNING ...): an error rolls back the
 * transaction it happens in.
 */
#ifndef ANALYTICSD_PGPOOL_H
#define ANALYTICSD_PGPOOL_H

#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <libpq-fe.h>

typedef struct pgpool pgpool;
typedef struct pgpool_query pgpool_query;
typedef struct pgpool_conn pgpool_conn;

/* Client-side deadline of every query, counted from the call that submitted it. */
#define PGPOOL_DEFAULT_DEADLINE_MS 35000

/*
 * Why a callback was called.
 *  PGPOOL_OK               success: the statement's final result, the connection, the ping.
 *  PGPOOL_UNAVAILABLE      no connection could be had (refused, connect limit, failed session
 *                          setup, or the back-off after a failed attempt), or the connection was
 *                          lost or could not send the statement. Whether a statement that was
 *                          sent took effect is unknown.
 *  PGPOOL_TIMEOUT          the request's client-side deadline passed (waiting for a connection,
 *                          connecting and running all count); the connection running it, if
 *                          any, was closed.
 *  PGPOOL_STATEMENT_ERROR  the server answered the statement with an error on a connection that
 *                          stayed up: SQL error, constraint violation, the server's own
 *                          statement_timeout (SQLSTATE 57014). The database is reachable.
 */
typedef enum {
    PGPOOL_OK,
    PGPOOL_UNAVAILABLE,
    PGPOOL_TIMEOUT,
    PGPOOL_STATEMENT_ERROR,
} pgpool_status;

/*
 * Statement completion. res depends on st: PGPOOL_OK, the final result (PGRES_TUPLES_OK,
 * _COMMAND_OK or _EMPTY_QUERY); PGPOOL_STATEMENT_ERROR, the server's error result, never NULL;
 * otherwise NULL.
 */
typedef void (*pgpool_cb)(void *data, pgpool_status st, PGresult *res);
/* Acquire completion: conn is the reserved connection when st == PGPOOL_OK, else NULL (st is
 * PGPOOL_UNAVAILABLE or PGPOOL_TIMEOUT). */
typedef void (*pgpool_acquire_cb)(void *data, pgpool_status st, pgpool_conn *conn);
/* Ping completion: PGPOOL_OK when "SELECT 1" answered in time. */
typedef void (*pgpool_ping_cb)(void *data, pgpool_status st);

/*
 * Creates a pool on `loop` for `url` (URI or keyword=value; copied). `role` ("http") names
 * the session setup (pgsession_setup_sql). At most `max_conns` (>= 1) pooled connections are
 * open at once, opened lazily when queries wait; at most `max_queue` requests wait for one.
 * Connects nothing and never fails.
 */
pgpool *pgpool_create(h2o_loop_t *loop, const char *url, const char *role, size_t max_conns,
                      size_t max_queue);

/*
 * Closes every connection (pooled and acquired) and frees all pool-owned memory.
 * Pending callbacks are never called; handles and acquired connections become invalid.
 * Must not be called from a pool callback. The loop must outlive this call.
 */
void pgpool_destroy(pgpool *p);

/*
 * Changes the client-side deadline for queries submitted from now on (default 35 s). After
 * the deadline the callback gets PGPOOL_TIMEOUT and the connection running the query is closed.
 */
void pgpool_set_deadline(pgpool *p, uint64_t ms);

/*
 * Runs one statement with `nparams` text parameters ($1.., NULL entries are SQL NULL) on a
 * pooled connection. `cb(data, st, res)` gets the outcome (pgpool_cb). Returns the handle, or
 * NULL when no connection is idle and `max_queue` requests already wait: then cb is never
 * called (answer an error at once). While PostgreSQL is unreachable, queries fail promptly
 * with PGPOOL_UNAVAILABLE: a failed connection attempt fails the requests waiting for it, and
 * for a short back-off afterwards (100 ms doubling up to 1 s) requests that would need a new
 * connection fail without a new attempt.
 */
pgpool_query *pgpool_exec(pgpool *p, const char *sql, int nparams, const char *const *params,
                          pgpool_cb cb, void *data);

/*
 * Cancels q: afterwards its callback is never called and q is invalid. A waiting request is
 * removed from the queue (a connection already set aside for a waiting acquire goes back to
 * the pool). A statement in flight is detached: its result is discarded when it arrives and
 * the connection then returns to the pool (or is closed if the deadline passes first).
 * q == NULL is accepted; calling it from q's own callback is allowed and does nothing.
 */
void pgpool_cancel(pgpool_query *q);

/*
 * Reserves one pooled connection for a multi-statement unit (a transaction).
 * `cb(data, st, conn)` receives the connection with PGPOOL_OK, or NULL with
 * PGPOOL_UNAVAILABLE (connect failure) or PGPOOL_TIMEOUT (deadline).
 * Returns a handle for pgpool_cancel, or NULL (cb never called) when the queue is full.
 */
pgpool_query *pgpool_acquire(pgpool *p, pgpool_acquire_cb cb, void *data);

/*
 * Runs one statement on an acquired connection; same result rules as pgpool_exec. One
 * statement at a time: returns NULL (cb never called) if one is still in flight on conn.
 * If the connection was lost, cb gets PGPOOL_UNAVAILABLE on the next loop iteration. After a
 * PGPOOL_STATEMENT_ERROR inside a transaction the connection is still usable (for ROLLBACK).
 */
pgpool_query *pgpool_conn_exec(pgpool_conn *conn, const char *sql, int nparams,
                               const char *const *params, pgpool_cb cb, void *data);

/*
 * Gives an acquired connection back; conn is invalid afterwards. A statement still in flight
 * is cancelled (its callback is not called). With `broken` != 0, or if the connection was
 * lost, it is closed. Otherwise an open or failed transaction is rolled back before the
 * connection is reused (it is closed if the rollback fails).
 */
void pgpool_release(pgpool_conn *conn, int broken);

/*
 * Health probe: runs "SELECT 1" on a pooled connection with its own deadline `timeout_ms`
 * (waiting and connecting included); it waits ahead of queued queries, so a backlog does not
 * make a healthy database look down. cb(data, PGPOOL_OK) on success, otherwise the cause;
 * on PGPOOL_TIMEOUT the connection running it is closed, so a late answer is discarded.
 * Returns a handle for pgpool_cancel, or NULL (cb never called) when the queue is full.
 */
pgpool_query *pgpool_ping(pgpool *p, uint64_t timeout_ms, pgpool_ping_cb cb, void *data);

/* The pool's state for metrics: connections running a statement or held, idle, still
 * connecting (or running the session setup), and requests waiting for a connection. */
typedef struct pgpool_stats {
    size_t busy, idle, connecting, queued;
} pgpool_stats;

/* Fills *out (zeros when p is NULL). Cheap: walks the idle list (at most max_conns). */
void pgpool_get_stats(const pgpool *p, pgpool_stats *out);

#endif
