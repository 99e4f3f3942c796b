/*
 * tests/integration/test_pgpool.c: the asynchronous PostgreSQL pool (common/pgpool.h) against
 * the real server named by DATABASE_URL, each test on its own h2o event loop and pool.
 * Covers parameters, concurrency, the wait queue, cancellation, sessions, session settings,
 * an unreachable server, connection loss and recovery, deadlines, ping, and the cause each
 * callback is given (pgpool_status, the SQLSTATE of a statement error).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/pgpool.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *db_url;

typedef struct {
    h2o_loop_t *loop;
    pgpool *pool;
} fixture;

static void fixture_open(fixture *f, const char *url, size_t max_conns, size_t max_queue)
{
    f->loop = h2o_evloop_create();
    f->pool = pgpool_create(f->loop, url, "http", max_conns, max_queue);
}

static void fixture_close(fixture *f)
{
    pgpool_destroy(f->pool);
    h2o_evloop_run(f->loop, 0); /* frees the disposed sockets */
    h2o_evloop_destroy(f->loop);
}

static int64_t now_ms(void)
{
    return clock_monotonic_ns() / 1000000;
}

/* Runs the loop until *counter >= target or max_ms pass. Returns the elapsed ms. */
static int64_t run_until(fixture *f, const int *counter, int target, int64_t max_ms)
{
    int64_t start = now_ms();
    while ((counter == NULL || *counter < target) && now_ms() - start < max_ms)
        h2o_evloop_run(f->loop, 10);
    return now_ms() - start;
}

/* A result slot filled by on_result. */
typedef struct {
    int calls;
    int ok; /* st == PGPOOL_OK */
    pgpool_status st;
    char sqlstate[6]; /* of a PGPOOL_STATEMENT_ERROR */
    char value[256];
    char value2[256];
    int64_t done_at;
    int *counter;
} slot;

static void on_result(void *data, pgpool_status st, PGresult *res)
{
    slot *s = data;
    s->calls++;
    s->done_at = now_ms();
    s->st = st;
    s->ok = st == PGPOOL_OK;
    assert_true((res != NULL) == (st == PGPOOL_OK || st == PGPOOL_STATEMENT_ERROR));
    if (st == PGPOOL_STATEMENT_ERROR) {
        const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", code != NULL ? code : "");
    }
    if (st == PGPOOL_OK && PQntuples(res) > 0) {
        snprintf(s->value, sizeof(s->value), "%s", PQgetvalue(res, 0, 0));
        if (PQnfields(res) > 1)
            snprintf(s->value2, sizeof(s->value2), "%s", PQgetvalue(res, 0, 1));
    }
    if (s->counter != NULL)
        ++*s->counter;
}

static void on_ping(void *data, pgpool_status st)
{
    slot *s = data;
    s->calls++;
    s->st = st;
    s->ok = st == PGPOOL_OK;
    s->done_at = now_ms();
    if (s->counter != NULL)
        ++*s->counter;
}

/* Blocking side connection for pg_terminate_backend and checks. */
static void terminate_backend(const char *pid)
{
    PGconn *c = PQconnectdb(db_url);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    const char *params[1] = {pid};
    PGresult *r =
        PQexecParams(c, "SELECT pg_terminate_backend($1::int)", 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    PQfinish(c);
}

/* Runs one query to completion on the fixture's pool and returns its first value. */
static void query_sync(fixture *f, const char *sql, slot *s)
{
    int n = 0;
    memset(s, 0, sizeof(*s));
    s->counter = &n;
    assert_non_null(pgpool_exec(f->pool, sql, 0, NULL, on_result, s));
    run_until(f, &n, 1, 10000);
    assert_int_equal(s->calls, 1);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_params(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 2, 10);
    char a[8] = "41", b[16] = "h\xc3\xa9llo 'x'";
    const char *params[3] = {a, b, NULL};
    slot s = {0};
    int n = 0;
    s.counter = &n;
    pgpool_query *q = pgpool_exec(
        f.pool, "SELECT ($1::int + 1)::text || '|' || $2::text || '|' || ($3::text IS NULL)::text",
        3, params, on_result, &s);
    assert_non_null(q);
    strcpy(a, "99"); /* the pool must have copied the parameters */
    strcpy(b, "garbage");
    run_until(&f, &n, 1, 5000);
    assert_int_equal(s.calls, 1);
    assert_true(s.ok);
    assert_string_equal(s.value, "42|h\xc3\xa9llo 'x'|true");

    /* an error result is a statement error with its SQLSTATE, and the pool keeps working */
    slot e = {0};
    e.counter = &n;
    assert_non_null(pgpool_exec(f.pool, "SELECT 1/0", 0, NULL, on_result, &e));
    run_until(&f, &n, 2, 5000);
    assert_int_equal(e.calls, 1);
    assert_int_equal(e.st, PGPOOL_STATEMENT_ERROR);
    assert_string_equal(e.sqlstate, "22012"); /* division_by_zero */
    query_sync(&f, "SELECT 'after'", &s);
    assert_true(s.ok);
    assert_string_equal(s.value, "after");
    fixture_close(&f);
}

#define MANY 40

static void test_many_concurrent(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 3, 100);
    slot s[MANY];
    char num[MANY][16];
    int n = 0;
    for (int i = 0; i < MANY; i++) {
        memset(&s[i], 0, sizeof(s[i]));
        s[i].counter = &n;
        snprintf(num[i], sizeof(num[i]), "%d", i);
        const char *params[1] = {num[i]};
        assert_non_null(pgpool_exec(f.pool,
                                    "SELECT ($1::int * 3)::text, pg_backend_pid()::text "
                                    "FROM pg_sleep(0.01)",
                                    1, params, on_result, &s[i]));
    }
    int64_t took = run_until(&f, &n, MANY, 20000);
    assert_int_equal(n, MANY);
    assert_true(took < 10000);
    char pids[MANY][256];
    int npids = 0;
    for (int i = 0; i < MANY; i++) {
        char want[16];
        snprintf(want, sizeof(want), "%d", i * 3);
        assert_int_equal(s[i].calls, 1);
        assert_true(s[i].ok);
        assert_string_equal(s[i].value, want);
        int seen = 0;
        for (int j = 0; j < npids; j++)
            seen |= strcmp(pids[j], s[i].value2) == 0;
        if (!seen)
            strcpy(pids[npids++], s[i].value2);
    }
    assert_int_equal(npids, 3); /* exactly max_conns connections did the work */
    fixture_close(&f);
}

static void test_queue_full(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 2);
    slot s[3];
    memset(s, 0, sizeof(s));
    int n = 0;
    s[0].counter = s[1].counter = s[2].counter = &n;
    assert_non_null(pgpool_exec(f.pool, "SELECT 'a'", 0, NULL, on_result, &s[0]));
    assert_non_null(pgpool_exec(f.pool, "SELECT 'b'", 0, NULL, on_result, &s[1]));
    assert_null(pgpool_exec(f.pool, "SELECT 'c'", 0, NULL, on_result, &s[2]));
    slot p = {0};
    assert_null(pgpool_ping(f.pool, 1000, on_ping, &p));
    run_until(&f, &n, 2, 5000);
    run_until(&f, NULL, 0, 100);
    assert_int_equal(n, 2);
    assert_string_equal(s[0].value, "a");
    assert_string_equal(s[1].value, "b");
    assert_int_equal(s[2].calls, 0);
    assert_int_equal(p.calls, 0);
    fixture_close(&f);
}

static void test_concurrency(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 2, 10);
    /* open both connections first */
    slot w[2];
    memset(w, 0, sizeof(w));
    int n = 0;
    w[0].counter = w[1].counter = &n;
    pgpool_exec(f.pool, "SELECT pg_sleep(0.05)", 0, NULL, on_result, &w[0]);
    pgpool_exec(f.pool, "SELECT pg_sleep(0.05)", 0, NULL, on_result, &w[1]);
    run_until(&f, &n, 2, 5000);
    assert_true(w[0].ok && w[1].ok);

    slot slow = {0}, fast = {0};
    int nslow = 0, nfast = 0;
    slow.counter = &nslow;
    fast.counter = &nfast;
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(2)", 0, NULL, on_result, &slow));
    run_until(&f, NULL, 0, 50);
    int64_t t0 = now_ms();
    assert_non_null(pgpool_exec(f.pool, "SELECT 1", 0, NULL, on_result, &fast));
    run_until(&f, &nfast, 1, 3000);
    assert_int_equal(fast.calls, 1);
    assert_true(fast.ok);
    assert_true(fast.done_at - t0 < 200);
    assert_int_equal(slow.calls, 0); /* the slow one was still running */
    run_until(&f, &nslow, 1, 5000);
    assert_true(slow.ok);
    fixture_close(&f);
}

static void test_cancel_queued(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot a = {0}, b = {0}, c = {0};
    int n = 0;
    a.counter = b.counter = c.counter = &n;
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &a));
    pgpool_query *qb = pgpool_exec(f.pool, "SELECT 'b'", 0, NULL, on_result, &b);
    assert_non_null(qb);
    assert_non_null(pgpool_exec(f.pool, "SELECT 'c'", 0, NULL, on_result, &c));
    pgpool_cancel(qb);
    run_until(&f, &n, 2, 5000);
    run_until(&f, NULL, 0, 200);
    assert_int_equal(a.calls, 1);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 1);
    assert_string_equal(c.value, "c");
    fixture_close(&f);
}

static void test_cancel_inflight(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot pid1;
    query_sync(&f, "SELECT pg_backend_pid()::text", &pid1);
    assert_true(pid1.ok);

    slot a = {0}, b = {0};
    int n = 0;
    a.counter = b.counter = &n;
    pgpool_query *qa = pgpool_exec(f.pool, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &a);
    assert_non_null(qa);
    int64_t t0 = now_ms();
    run_until(&f, NULL, 0, 20); /* it is on the wire now */
    pgpool_cancel(qa);
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_backend_pid()::text", 0, NULL, on_result, &b));
    run_until(&f, &n, 1, 5000);
    run_until(&f, NULL, 0, 200);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    assert_true(b.ok);
    assert_string_equal(b.value, pid1.value); /* same connection, reused */
    assert_true(b.done_at - t0 >= 250);       /* after the detached result was drained */
    fixture_close(&f);
}

/* Session test: a scripted sequence of statements on acquired connections. */
typedef struct {
    fixture *f;
    pgpool_conn *conn;
    int step;
    int finished;
    int failed;
    int reacquired;
    char count_after_commit[16];
    char count_after_rollback[16];
    char pid[2][16];
} session_script;

static void session_step(session_script *ss);

static void session_on_result(void *data, pgpool_status st, PGresult *res)
{
    session_script *ss = data;
    if (st != PGPOOL_OK) {
        ss->failed = ss->step;
        ss->finished = 1;
        return;
    }
    if (ss->step == 5)
        snprintf(ss->count_after_commit, 16, "%s", PQgetvalue(res, 0, 0));
    if (ss->step == 9)
        snprintf(ss->count_after_rollback, 16, "%s", PQgetvalue(res, 0, 0));
    if (ss->step == 1 || ss->step == 9)
        snprintf(ss->pid[ss->step == 9], 16, "%s", PQgetvalue(res, 0, 1));
    ss->step++;
    session_step(ss);
}

static void session_on_acquire(void *data, pgpool_status st, pgpool_conn *conn)
{
    session_script *ss = data;
    if (st != PGPOOL_OK) {
        ss->failed = 100 + ss->step;
        ss->finished = 1;
        return;
    }
    ss->conn = conn;
    if (ss->step == 0)
        ss->step = 1;
    session_step(ss);
}

static void session_step(session_script *ss)
{
    static const char *const sql[] = {
        NULL,
        "SELECT 1, pg_backend_pid()::text",
        "CREATE TEMP TABLE pgpool_t (x int)",
        "BEGIN",
        "INSERT INTO pgpool_t VALUES ($1::int)",
        "SELECT count(*)::text FROM pgpool_t", /* step 5, inside the transaction */
        "COMMIT",
        "BEGIN",
        "INSERT INTO pgpool_t VALUES (2)", /* then released with the transaction open */
        "SELECT count(*)::text, pg_backend_pid()::text FROM pgpool_t", /* after re-acquire */
    };
    const char *one[1] = {"1"};
    switch (ss->step) {
    case 9:
        if (!ss->reacquired) {
            pgpool_release(ss->conn, 0); /* must roll back the open transaction */
            ss->conn = NULL;
            ss->reacquired = 1;
            assert_non_null(pgpool_acquire(ss->f->pool, session_on_acquire, ss));
            return;
        }
        break;
    case 10:
        pgpool_release(ss->conn, 0);
        ss->conn = NULL;
        ss->finished = 1;
        return;
    default:
        break;
    }
    assert_non_null(pgpool_conn_exec(ss->conn, sql[ss->step], ss->step == 4 ? 1 : 0,
                                     ss->step == 4 ? one : NULL, session_on_result, ss));
}

static void test_session_transaction(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    session_script ss = {0};
    ss.f = &f;
    assert_non_null(pgpool_acquire(f.pool, session_on_acquire, &ss));
    run_until(&f, &ss.finished, 1, 10000);
    assert_int_equal(ss.failed, 0);
    assert_int_equal(ss.finished, 1);
    assert_string_equal(ss.count_after_commit, "1");
    assert_string_equal(ss.count_after_rollback, "1"); /* the uncommitted row is gone */
    assert_string_equal(ss.pid[0], ss.pid[1]);         /* same connection (temp table kept) */
    /* the pool's only connection is usable for one-shot queries again, temp table intact */
    slot s;
    query_sync(&f, "SELECT count(*)::text FROM pgpool_t", &s);
    assert_true(s.ok);
    assert_string_equal(s.value, "1");
    fixture_close(&f);
}

typedef struct {
    int calls;
    pgpool_status st;
    pgpool_conn *conn;
    int64_t done_at;
} acquired;

static void on_acquire_store(void *data, pgpool_status st, pgpool_conn *conn)
{
    acquired *a = data;
    a->calls++;
    a->st = st;
    a->conn = conn;
    assert_true((conn != NULL) == (st == PGPOOL_OK));
    a->done_at = now_ms();
}

static void test_session_edges(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);

    /* released with a statement in flight: its callback never runs, the connection is
     * drained and handed to the next acquire */
    acquired a1 = {0}, a2 = {0};
    assert_non_null(pgpool_acquire(f.pool, on_acquire_store, &a1));
    run_until(&f, &a1.calls, 1, 5000);
    assert_non_null(a1.conn);
    slot x = {0};
    assert_non_null(pgpool_conn_exec(a1.conn, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &x));
    assert_null(pgpool_conn_exec(a1.conn, "SELECT 1", 0, NULL, on_result, &x)); /* one at a time */
    int64_t t0 = now_ms();
    pgpool_release(a1.conn, 0);
    assert_non_null(pgpool_acquire(f.pool, on_acquire_store, &a2));
    run_until(&f, &a2.calls, 1, 5000);
    assert_non_null(a2.conn);
    assert_true(a2.done_at - t0 >= 250);
    assert_int_equal(x.calls, 0);

    /* the session's backend dies: the next statement fails promptly, release cleans up */
    slot pid = {0};
    int n = 0;
    pid.counter = &n;
    assert_non_null(
        pgpool_conn_exec(a2.conn, "SELECT pg_backend_pid()::text", 0, NULL, on_result, &pid));
    run_until(&f, &n, 1, 5000);
    assert_true(pid.ok);
    terminate_backend(pid.value);
    run_until(&f, NULL, 0, 300);
    slot dead = {0};
    dead.counter = &n;
    t0 = now_ms();
    assert_non_null(pgpool_conn_exec(a2.conn, "SELECT 1", 0, NULL, on_result, &dead));
    run_until(&f, &n, 2, 5000);
    assert_int_equal(dead.calls, 1);
    assert_int_equal(dead.st, PGPOOL_UNAVAILABLE);
    assert_true(dead.done_at - t0 < 500);
    pgpool_release(a2.conn, 0);
    slot s;
    query_sync(&f, "SELECT 'back'", &s);
    assert_true(s.ok);
    assert_string_equal(s.value, "back");

    /* an acquire cancelled before delivery gives its connection back to the pool */
    acquired a3 = {0};
    pgpool_query *q = pgpool_acquire(f.pool, on_acquire_store, &a3);
    assert_non_null(q);
    pgpool_cancel(q);
    run_until(&f, NULL, 0, 100);
    assert_int_equal(a3.calls, 0);
    t0 = now_ms();
    query_sync(&f, "SELECT 'free'", &s);
    assert_true(s.ok);
    assert_true(now_ms() - t0 < 1000);
    fixture_close(&f);
}

static void test_session_settings(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot s;
    query_sync(&f,
               "SELECT current_setting('TimeZone') || '|' || current_setting('DateStyle') || '|' "
               "|| current_setting('statement_timeout') || '|' || "
               "current_setting('client_encoding'), current_setting('application_name')",
               &s);
    assert_true(s.ok);
    assert_string_equal(s.value, "UTC|ISO, YMD|30s|UTF8");
    char want[64];
    snprintf(want, sizeof(want), "pg-analytics-service:http:%d", (int)getpid());
    assert_string_equal(s.value2, want);
    fixture_close(&f);
}

static void on_acquire_slot(void *data, pgpool_status st, pgpool_conn *conn)
{
    slot *s = data;
    s->calls++;
    s->st = st;
    s->ok = st == PGPOOL_OK;
    s->done_at = now_ms();
    if (conn != NULL)
        pgpool_release(conn, 0);
    if (s->counter != NULL)
        ++*s->counter;
}

static void test_unreachable(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, "postgres://app:app@127.0.0.1:1/h_pgasync?sslmode=disable", 2, 10);
    slot s[4];
    memset(s, 0, sizeof(s));
    int n = 0;
    for (int i = 0; i < 4; i++)
        s[i].counter = &n;
    int64_t t0 = now_ms();
    assert_non_null(pgpool_exec(f.pool, "SELECT 1", 0, NULL, on_result, &s[0]));
    assert_non_null(pgpool_exec(f.pool, "SELECT 2", 0, NULL, on_result, &s[1]));
    assert_non_null(pgpool_ping(f.pool, 1000, on_ping, &s[2]));
    assert_non_null(pgpool_acquire(f.pool, on_acquire_slot, &s[3]));
    run_until(&f, &n, 4, 3000);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].st, PGPOOL_UNAVAILABLE); /* exec, exec, ping and acquire alike */
        assert_true(s[i].done_at - t0 < 1000);
    }
    /* still down after the back-off: a fresh attempt fails just as fast */
    run_until(&f, NULL, 0, 1200);
    slot again = {0};
    again.counter = &n;
    t0 = now_ms();
    assert_non_null(pgpool_exec(f.pool, "SELECT 3", 0, NULL, on_result, &again));
    run_until(&f, &n, 5, 3000);
    assert_int_equal(again.calls, 1);
    assert_int_equal(again.st, PGPOOL_UNAVAILABLE);
    assert_true(again.done_at - t0 < 1000);
    fixture_close(&f);
}

static void test_connection_loss(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot pid1;
    query_sync(&f, "SELECT pg_backend_pid()::text", &pid1);
    assert_true(pid1.ok);

    slot a = {0};
    int n = 0;
    a.counter = &n;
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(5)", 0, NULL, on_result, &a));
    run_until(&f, NULL, 0, 200);
    int64_t t0 = now_ms();
    terminate_backend(pid1.value);
    run_until(&f, &n, 1, 6000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.st, PGPOOL_UNAVAILABLE); /* lost, not a statement error */
    assert_true(a.done_at - t0 < 2000);

    /* the next query reconnects */
    slot pid2;
    query_sync(&f, "SELECT pg_backend_pid()::text", &pid2);
    assert_true(pid2.ok);
    assert_string_not_equal(pid2.value, pid1.value);

    /* an idle connection killed behind our back is noticed; the next query still succeeds */
    terminate_backend(pid2.value);
    run_until(&f, NULL, 0, 300);
    slot pid3;
    query_sync(&f, "SELECT pg_backend_pid()::text", &pid3);
    assert_true(pid3.ok);
    assert_string_not_equal(pid3.value, pid2.value);
    fixture_close(&f);
}

static void test_deadline(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot pid1;
    query_sync(&f, "SELECT pg_backend_pid()::text", &pid1);
    pgpool_set_deadline(f.pool, 300);
    slot a = {0};
    int n = 0;
    a.counter = &n;
    int64_t t0 = now_ms();
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(3)", 0, NULL, on_result, &a));
    run_until(&f, &n, 1, 5000);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.st, PGPOOL_TIMEOUT);
    assert_true(a.done_at - t0 >= 250 && a.done_at - t0 < 1500);
    pgpool_set_deadline(f.pool, PGPOOL_DEFAULT_DEADLINE_MS);
    slot pid2;
    query_sync(&f, "SELECT pg_backend_pid()::text", &pid2);
    assert_true(pid2.ok);
    assert_string_not_equal(pid2.value, pid1.value); /* the timed-out connection was closed */
    fixture_close(&f);
}

static void test_ping(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot p = {0};
    int n = 0;
    p.counter = &n;
    assert_non_null(pgpool_ping(f.pool, 1000, on_ping, &p));
    run_until(&f, &n, 1, 3000);
    assert_int_equal(p.calls, 1);
    assert_true(p.ok);

    /* the only connection is busy: the ping gives up at its own deadline */
    slot busy = {0}, late = {0};
    int nb = 0, nl = 0;
    busy.counter = &nb;
    late.counter = &nl;
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(1)", 0, NULL, on_result, &busy));
    int64_t t0 = now_ms();
    assert_non_null(pgpool_ping(f.pool, 200, on_ping, &late));
    run_until(&f, &nl, 1, 3000);
    assert_int_equal(late.calls, 1);
    assert_int_equal(late.st, PGPOOL_TIMEOUT);
    assert_true(late.done_at - t0 >= 150 && late.done_at - t0 < 700);
    run_until(&f, &nb, 1, 3000);
    assert_true(busy.ok);

    /* a ping jumps the queue: behind a busy connection and a long queued query, it runs as
     * soon as the connection frees up */
    slot busy2 = {0}, queued = {0}, jump = {0};
    int nq = 0, nj = 0;
    busy2.counter = &nq;
    queued.counter = &nq;
    jump.counter = &nj;
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(0.3)", 0, NULL, on_result, &busy2));
    assert_non_null(pgpool_exec(f.pool, "SELECT pg_sleep(1)", 0, NULL, on_result, &queued));
    t0 = now_ms();
    assert_non_null(pgpool_ping(f.pool, 1000, on_ping, &jump));
    run_until(&f, &nj, 1, 3000);
    assert_true(jump.ok);
    assert_true(jump.done_at - t0 < 900);
    assert_int_equal(queued.calls, 0);
    run_until(&f, &nq, 2, 5000);
    assert_true(busy2.ok && queued.ok);

    /* a cancelled ping never reports */
    slot gone = {0};
    pgpool_query *q = pgpool_ping(f.pool, 1000, on_ping, &gone);
    assert_non_null(q);
    pgpool_cancel(q);
    run_until(&f, NULL, 0, 200);
    assert_int_equal(gone.calls, 0);
    fixture_close(&f);
}

/* Runs one statement on an acquired connection to completion. */
static void conn_sync(fixture *f, pgpool_conn *conn, const char *sql, slot *s)
{
    int n = 0;
    memset(s, 0, sizeof(*s));
    s->counter = &n;
    assert_non_null(pgpool_conn_exec(conn, sql, 0, NULL, on_result, s));
    run_until(f, &n, 1, 10000);
    assert_int_equal(s->calls, 1);
}

/* Statement errors carry their SQLSTATE and leave the connection usable; the server's own
 * statement_timeout is a statement error (the database answered), not PGPOOL_TIMEOUT. */
static void test_statement_errors(void **state)
{
    (void)state;
    fixture f;
    fixture_open(&f, db_url, 1, 10);
    slot s;
    query_sync(&f, "SELEC 1", &s);
    assert_int_equal(s.st, PGPOOL_STATEMENT_ERROR);
    assert_string_equal(s.sqlstate, "42601"); /* syntax_error */

    acquired a = {0};
    assert_non_null(pgpool_acquire(f.pool, on_acquire_store, &a));
    run_until(&f, &a.calls, 1, 5000);
    assert_int_equal(a.st, PGPOOL_OK);
    static const struct {
        const char *sql;
        pgpool_status st;
        const char *sqlstate; /* of a statement error */
    } script[] = {
        {"CREATE TEMP TABLE pgpool_u (x int PRIMARY KEY)", PGPOOL_OK, ""},
        {"INSERT INTO pgpool_u VALUES (1)", PGPOOL_OK, ""},
        {"INSERT INTO pgpool_u VALUES (1)", PGPOOL_STATEMENT_ERROR, "23505"}, /* unique */
        {"BEGIN", PGPOOL_OK, ""},
        {"SET LOCAL statement_timeout = '50ms'", PGPOOL_OK, ""},
        {"SELECT pg_sleep(5)", PGPOOL_STATEMENT_ERROR, "57014"}, /* query_canceled */
        {"SELECT 1", PGPOOL_STATEMENT_ERROR, "25P02"},           /* in_failed_sql_transaction */
    };
    for (size_t i = 0; i < sizeof(script) / sizeof(script[0]); i++) {
        conn_sync(&f, a.conn, script[i].sql, &s);
        assert_int_equal(s.st, script[i].st);
        assert_string_equal(s.sqlstate, script[i].sqlstate);
    }
    pgpool_release(a.conn, 0); /* rolls the failed transaction back */

    /* the same connection (the temp table is there), clean again */
    query_sync(&f, "SELECT count(*)::text, current_setting('statement_timeout') FROM pgpool_u", &s);
    assert_int_equal(s.st, PGPOOL_OK);
    assert_string_equal(s.value, "1");
    assert_string_equal(s.value2, "30s");
    fixture_close(&f);
}

int main(void)
{
    db_url = getenv("DATABASE_URL");
    if (db_url == NULL || *db_url == '\0') {
        fprintf(stderr, "test_pgpool: DATABASE_URL is not set (postgres://... of a test DB)\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_many_concurrent),
        cmocka_unit_test(test_queue_full),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_cancel_inflight),
        cmocka_unit_test(test_session_transaction),
        cmocka_unit_test(test_session_edges),
        cmocka_unit_test(test_session_settings),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_connection_loss),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_statement_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
