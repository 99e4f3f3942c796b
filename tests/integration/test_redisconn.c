/*
 * tests/integration/test_redisconn.c: common/redisconn against real Redis servers, each test on
 * its own h2o evloop. Uses the lead's Redis from REDIS_URL (database 9 only, keys prefixed
 * "redisconn-test:") and, for outage and AUTH tests, private redis-server children started on
 * free loopback ports (killed by the tests themselves). Also a plain listening socket that never
 * answers, and 127.0.0.1:1 for "connection refused".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/redisconn.h"
#include "common/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <h2o/socket/evloop.h>

#define TEST_DB 9

/* ---- helpers ----------------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    return clock_monotonic_ns() / 1000000;
}

typedef struct result {
    int called;
    redisconn_status st;
    int type;
    long long integer;
    char *str;
    size_t len;
    int64_t at_ms;
} result;

static void capture(void *data, redisconn_status st, redisReply *reply)
{
    result *r = data;
    r->called++;
    r->st = st;
    r->at_ms = now_ms();
    r->type = reply != NULL ? reply->type : -1;
    if (reply != NULL) {
        r->integer = reply->integer;
        free(r->str);
        r->str = NULL;
        if (reply->str != NULL) {
            r->str = xmalloc(reply->len + 1);
            memcpy(r->str, reply->str, reply->len);
            r->str[reply->len] = '\0';
            r->len = reply->len;
        }
    }
}

static void result_reset(result *r)
{
    free(r->str);
    memset(r, 0, sizeof(*r));
}

/* Test shorthand for redisconn_command_argv: `words` split at single spaces, one argument each
 * (at most 8; no argument with a space). Returns the command handle. */
static redisconn_cmd *command(redisconn *c, redisconn_cb cb, void *data, const char *words)
{
    char buf[256];
    const char *argv[8];
    size_t argvlen[8];
    int argc = 0;
    assert_true(strlen(words) < sizeof(buf));
    strcpy(buf, words);
    for (char *w = strtok(buf, " "); w != NULL; w = strtok(NULL, " ")) {
        assert_true(argc < 8);
        argv[argc] = w;
        argvlen[argc++] = strlen(w);
    }
    return redisconn_command_argv(c, argc, argv, argvlen, cb, data);
}

static void count_failure(void *data)
{
    (*(int *)data)++;
}

/* Runs the loop until *flag is non-zero or ms elapse; returns *flag. */
static int run_until(h2o_loop_t *loop, const int *flag, int ms)
{
    int64_t end = now_ms() + ms;
    while (!*flag && now_ms() < end)
        h2o_evloop_run(loop, 10);
    return *flag;
}

static void run_for(h2o_loop_t *loop, int ms)
{
    int never = 0;
    run_until(loop, &never, ms);
}

/* The lead's Redis from REDIS_URL ("redis://[user:pass@]host:port[/db]"), with db 9. */
static config_redis lead_endpoint(void)
{
    static char host[256];
    const char *url = getenv("REDIS_URL");
    config_redis ep = {0};
    if (url == NULL || strncmp(url, "redis://", 8) != 0)
        fail_msg("REDIS_URL must be set to redis://host:port (got %s)", url ? url : "nothing");
    const char *p = url + 8, *at = strchr(p, '@');
    if (at != NULL)
        p = at + 1;
    size_t n = strcspn(p, ":/");
    assert_true(n > 0 && n < sizeof(host));
    memcpy(host, p, n);
    host[n] = '\0';
    ep.host = host;
    ep.port = p[n] == ':' ? atoi(p + n + 1) : 6379;
    ep.db = TEST_DB;
    return ep;
}

static redisContext *sync_connect(const char *host, int port, int db)
{
    struct timeval tv = {2, 0};
    redisContext *rc = redisConnectWithTimeout(host, port, tv);
    assert_non_null(rc);
    assert_int_equal(rc->err, 0);
    redisReply *r = redisCommand(rc, "SELECT %d", db);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    return rc;
}

static void sync_del(const char *key)
{
    config_redis ep = lead_endpoint();
    redisContext *rc = sync_connect(ep.host, ep.port, TEST_DB);
    freeReplyObject(redisCommand(rc, "DEL %s", key));
    redisFree(rc);
}

/* Open descriptors of this process (to catch leaked or double-closed hiredis sockets). */
static int count_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    return n;
}

/* A private redis-server child on a free loopback port. */
typedef struct priv_redis {
    pid_t pid;
    int port;
    char pass[32];
} priv_redis;

static priv_redis g_priv;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* Starts (or restarts, same port and password) the private server and waits until it answers. */
static void priv_start(priv_redis *r)
{
    char port[16];
    if (r->port == 0)
        r->port = free_port();
    snprintf(port, sizeof(port), "%d", r->port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (chdir("/tmp") != 0)
            _exit(126);
        const char *argv[20] = {"redis-server", "--port",      port, "--bind",
                                "127.0.0.1",    "--save",      "",   "--appendonly",
                                "no",           "--daemonize", "no", "--enable-debug-command",
                                "yes"};
        int argc = 13;
        if (r->pass[0] != '\0') {
            argv[argc++] = "--requirepass";
            argv[argc++] = r->pass;
        }
        argv[argc] = NULL;
        execvp("redis-server", (char **)argv);
        _exit(127);
    }
    r->pid = pid;
    int64_t end = now_ms() + 5000;
    for (;;) {
        struct timeval tv = {0, 200000};
        redisContext *rc = redisConnectWithTimeout("127.0.0.1", r->port, tv);
        redisReply *reply = rc != NULL && rc->err == 0 ? redisCommand(rc, "PING") : NULL;
        int up = reply != NULL;
        freeReplyObject(reply);
        redisFree(rc);
        if (up)
            return;
        if (now_ms() > end)
            fail_msg("private redis-server on port %d did not start", r->port);
        usleep(20000);
    }
}

static void priv_kill(priv_redis *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

static config_redis priv_endpoint(const priv_redis *r)
{
    config_redis ep = {.host = "127.0.0.1", .port = r->port, .db = TEST_DB};
    return ep;
}

static int teardown_priv(void **state)
{
    (void)state;
    priv_kill(&g_priv);
    memset(&g_priv, 0, sizeof(g_priv));
    return 0;
}

/* ---- tests against the lead's Redis ------------------------------------------------------ */

static void test_set_get_binary_safe(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    assert_non_null(c);

    static const char key[] = "redisconn-test:bin key\r\n";
    static const char val[] = "a\0b\r\nc\xff\"$3\r\n";
    const char *argv[3] = {"SET", key, val};
    size_t argvlen[3] = {3, sizeof(key) - 1, sizeof(val) - 1};
    result set = {0}, get = {0};
    assert_non_null(redisconn_command_argv(c, 3, argv, argvlen, capture, &set));
    assert_int_equal(set.called, 0); /* never called from inside the command call */
    const char *gargv[2] = {"GET", key};
    size_t gargvlen[2] = {3, sizeof(key) - 1};
    assert_non_null(redisconn_command_argv(c, 2, gargv, gargvlen, capture, &get));
    assert_true(run_until(loop, &get.called, 3000));

    assert_int_equal(set.called, 1);
    assert_int_equal(set.st, REDISCONN_OK);
    assert_int_equal(set.type, REDIS_REPLY_STATUS);
    assert_int_equal(get.st, REDISCONN_OK);
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_int_equal(get.len, sizeof(val) - 1);
    assert_memory_equal(get.str, val, sizeof(val) - 1);
    assert_int_equal(failures, 0);

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    result_reset(&set);
    result_reset(&get);
    sync_del(key);
}

static void test_select_db_honoured(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    redisconn *c = redisconn_create(loop, &ep, NULL, NULL);
    char value[64];
    snprintf(value, sizeof(value), "db9-%d", (int)getpid());

    result set = {0};
    char words[96];
    snprintf(words, sizeof(words), "SET redisconn-test:select %s", value);
    command(c, capture, &set, words);
    assert_true(run_until(loop, &set.called, 3000));
    assert_int_equal(set.st, REDISCONN_OK);
    assert_int_equal(set.type, REDIS_REPLY_STATUS);

    /* visible in database 9 through an independent client (like redis-cli -n 9) */
    redisContext *rc = sync_connect(ep.host, ep.port, TEST_DB);
    redisReply *r = redisCommand(rc, "GET redisconn-test:select");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, value);
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc, "DEL redisconn-test:select"));
    redisFree(rc);

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    result_reset(&set);
}

#define NPIPE 500

typedef struct pipe_state {
    int next; /* index of the next expected callback */
    int errors;
    int done;
} pipe_state;

typedef struct pipe_item {
    pipe_state *ps;
    int index;
} pipe_item;

static void pipe_cb(void *data, redisconn_status st, redisReply *reply)
{
    pipe_item *it = data;
    if (st != REDISCONN_OK || reply->type != REDIS_REPLY_INTEGER ||
        reply->integer != it->index + 1 || it->ps->next != it->index)
        it->ps->errors++;
    it->ps->next++;
    if (it->ps->next == NPIPE)
        it->ps->done = 1;
}

static void test_pipelined_in_order(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    sync_del("redisconn-test:counter");

    pipe_state ps = {0};
    pipe_item *items = xcalloc(NPIPE, sizeof(*items));
    for (int i = 0; i < NPIPE; i++) {
        items[i] = (pipe_item){&ps, i};
        assert_non_null(command(c, pipe_cb, &items[i], "INCR redisconn-test:counter"));
    }
    assert_true(run_until(loop, &ps.done, 5000));
    assert_int_equal(ps.next, NPIPE);
    assert_int_equal(ps.errors, 0);
    assert_int_equal(failures, 0);

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    free(items);
    sync_del("redisconn-test:counter");
}

static void test_error_reply_is_not_failure(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);

    result set = {0}, incr = {0}, get = {0};
    command(c, capture, &set, "SET redisconn-test:str abc");
    command(c, capture, &incr, "INCR redisconn-test:str");
    command(c, capture, &get, "GET redisconn-test:str");
    assert_true(run_until(loop, &get.called, 3000));
    assert_int_equal(incr.st, REDISCONN_ERROR_REPLY);
    assert_int_equal(incr.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(incr.str, "not an integer"));
    /* the connection stayed up and usable */
    assert_int_equal(get.st, REDISCONN_OK);
    assert_string_equal(get.str, "abc");
    run_for(loop, 100);
    assert_int_equal(failures, 0);

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    result_reset(&set);
    result_reset(&incr);
    result_reset(&get);
    sync_del("redisconn-test:str");
}

/* A callback that cancels one command and issues another (re-entrancy). */
typedef struct cancel_ctx {
    redisconn *c;
    redisconn_cmd *to_cancel;
    result *issued;
    int order[8];
    int norder;
} cancel_ctx;

typedef struct tagged {
    cancel_ctx *ctx;
    int tag;
    int called;
} tagged;

static void tagged_cb(void *data, redisconn_status st, redisReply *reply)
{
    (void)reply;
    tagged *t = data;
    t->called++;
    if (st != REDISCONN_OK)
        t->tag += 1000; /* makes the order check fail */
    t->ctx->order[t->ctx->norder++] = t->tag;
    if (t->tag == 1) {
        redisconn_cancel(t->ctx->to_cancel);
        command(t->ctx->c, capture, t->ctx->issued, "PING");
    }
}

static void test_cancel(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);

    result issued = {0};
    cancel_ctx ctx = {.c = c, .issued = &issued};
    tagged a = {&ctx, 1, 0}, b = {&ctx, 2, 0}, cc = {&ctx, 3, 0}, d = {&ctx, 4, 0};
    command(c, tagged_cb, &a, "PING");
    redisconn_cmd *cb_b = command(c, tagged_cb, &b, "PING");
    ctx.to_cancel = command(c, tagged_cb, &cc, "PING");
    command(c, tagged_cb, &d, "PING");
    redisconn_cancel(cb_b); /* cancelled while the connection is still being opened */
    assert_true(run_until(loop, &issued.called, 3000));
    run_for(loop, 100);

    assert_int_equal(a.called, 1);
    assert_int_equal(b.called, 0);
    assert_int_equal(cc.called, 0);
    assert_int_equal(d.called, 1);
    assert_int_equal(ctx.norder, 2);
    assert_int_equal(ctx.order[0], 1);
    assert_int_equal(ctx.order[1], 4);
    assert_int_equal(issued.st, REDISCONN_OK);
    assert_string_equal(issued.str, "PONG");
    assert_int_equal(failures, 0);

    /* a command cancelled right away on an established connection */
    result x = {0}, y = {0};
    redisconn_cancel(command(c, capture, &x, "PING"));
    command(c, capture, &y, "PING");
    assert_true(run_until(loop, &y.called, 3000));
    run_for(loop, 50);
    assert_int_equal(x.called, 0);

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    result_reset(&issued);
    result_reset(&y);
}

static void test_tls_rejected(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    ep.tls = true;
    assert_null(redisconn_create(loop, &ep, NULL, NULL));
    assert_null(redisconn_create(loop, &ep, NULL, NULL)); /* logged only once */
    h2o_evloop_destroy(loop);
}

/* ---- failures ---------------------------------------------------------------------------- */

typedef struct refused_ctx {
    redisconn *c;
    redisconn_cmd *other;
    int first_called, other_called, retry_called;
    redisconn_status retry_st;
} refused_ctx;

static void refused_other_cb(void *data, redisconn_status st, redisReply *reply)
{
    (void)st;
    (void)reply;
    ((refused_ctx *)data)->other_called++;
}

static void refused_retry_cb(void *data, redisconn_status st, redisReply *reply)
{
    (void)reply;
    refused_ctx *x = data;
    x->retry_called++;
    x->retry_st = st;
}

static void refused_first_cb(void *data, redisconn_status st, redisReply *reply)
{
    (void)reply;
    refused_ctx *x = data;
    x->first_called++;
    if (st == REDISCONN_UNAVAILABLE) {
        redisconn_cancel(x->other);                         /* cancels a failing one */
        command(x->c, refused_retry_cb, x, "GET whatever"); /* retries from the cb */
    }
}

static void test_connection_refused(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = {.host = "127.0.0.1", .port = 1, .db = TEST_DB};
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);

    result r = {0};
    int64_t t0 = now_ms();
    assert_non_null(command(c, capture, &r, "PING"));
    assert_int_equal(r.called, 0); /* reported asynchronously */
    assert_true(run_until(loop, &r.called, 2000));
    assert_int_equal(r.st, REDISCONN_UNAVAILABLE);
    assert_true(r.at_ms - t0 < REDISCONN_TIMEOUT_MS);
    run_for(loop, 50);
    assert_int_equal(failures, 1);
    assert_int_equal(r.called, 1);

    /* an UNAVAILABLE callback may cancel another failing command and issue a new one */
    refused_ctx x = {.c = c};
    command(c, refused_first_cb, &x, "PING");
    x.other = command(c, refused_other_cb, &x, "PING");
    assert_true(run_until(loop, &x.retry_called, 2000));
    run_for(loop, 50);
    assert_int_equal(x.first_called, 1);
    assert_int_equal(x.other_called, 0);
    assert_int_equal(x.retry_called, 1);
    assert_int_equal(x.retry_st, REDISCONN_UNAVAILABLE);
    assert_int_equal(failures, 3); /* one per connect attempt */

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    result_reset(&r);
}

/* connect(2) itself fails (TCP to a multicast address: ENETUNREACH), before any event */
static void test_connect_fails_immediately(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = {.host = "224.0.0.1", .port = 6379, .db = TEST_DB};
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    result a = {0}, b = {0};
    command(c, capture, &a, "PING");
    command(c, capture, &b, "PING"); /* joins the pending failure report */
    assert_int_equal(a.called, 0);
    assert_true(run_until(loop, &b.called, 2000));
    assert_int_equal(a.st, REDISCONN_UNAVAILABLE);
    assert_int_equal(b.st, REDISCONN_UNAVAILABLE);
    run_for(loop, 50);
    assert_int_equal(failures, 1);
    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
}

/* A callback that retries forever against an address that fails at once must not stall the
 * loop: each retry's failure is reported on a later loop iteration. */
typedef struct storm {
    redisconn *c;
    int failed;
} storm;

static void storm_cb(void *data, redisconn_status st, redisReply *reply)
{
    (void)reply;
    storm *s = data;
    if (st == REDISCONN_UNAVAILABLE) {
        s->failed++;
        command(s->c, storm_cb, s, "PING");
    }
}

static void test_retry_from_callback_does_not_spin(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    int fds = count_fds(); /* after the loop: h2o 2.2.5 never closes its epoll fd */
    config_redis ep = {.host = "224.0.0.1", .port = 6379};
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    storm s = {c, 0};
    command(c, storm_cb, &s, "PING");
    int64_t t0 = now_ms();
    run_for(loop, 30); /* returns: the loop is not stuck in one timeout pass */
    assert_true(now_ms() - t0 < 500);
    assert_true(s.failed >= 2);
    assert_int_equal(failures, s.failed);
    redisconn_destroy(c); /* drops the pending retry */
    assert_int_equal(count_fds(), fds);
    h2o_evloop_destroy(loop);
}

static void test_timeout_silent_server(void **state)
{
    (void)state;
    /* accepts TCP connections (kernel backlog) but never answers */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(lfd, 16), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sin, &len), 0);

    h2o_loop_t *loop = h2o_evloop_create();
    int fds = count_fds(); /* after the loop: h2o 2.2.5 never closes its epoll fd */
    config_redis ep = {.host = "127.0.0.1", .port = ntohs(sin.sin_port), .db = 0};
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);

    result first = {0}, second = {0};
    int64_t t0 = now_ms();
    command(c, capture, &first, "PING");
    run_for(loop, 400);
    assert_int_equal(first.called, 0);
    command(c, capture, &second, "PING"); /* shares the fate of the first */
    assert_true(run_until(loop, &second.called, 3000));
    assert_int_equal(first.st, REDISCONN_TIMEOUT);
    assert_int_equal(second.st, REDISCONN_TIMEOUT);
    int64_t elapsed = first.at_ms - t0;
    print_message("silent server: TIMEOUT after %lld ms\n", (long long)elapsed);
    assert_true(elapsed >= REDISCONN_TIMEOUT_MS - 50 && elapsed < REDISCONN_TIMEOUT_MS + 500);
    assert_true(second.at_ms - first.at_ms < 100);
    run_for(loop, 300);
    assert_int_equal(failures, 1);

    redisconn_destroy(c);
    assert_int_equal(count_fds(), fds);
    h2o_evloop_destroy(loop);
    close(lfd);
}

static void test_debug_sleep_times_out(void **state)
{
    (void)state;
    priv_start(&g_priv);
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = priv_endpoint(&g_priv);
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);

    result ping = {0}, sleep = {0};
    command(c, capture, &ping, "PING");
    assert_true(run_until(loop, &ping.called, 3000));
    assert_int_equal(ping.st, REDISCONN_OK);

    int64_t t0 = now_ms();
    command(c, capture, &sleep, "DEBUG SLEEP 2");
    assert_true(run_until(loop, &sleep.called, 3000));
    int64_t elapsed = sleep.at_ms - t0;
    print_message("DEBUG SLEEP 2: TIMEOUT after %lld ms\n", (long long)elapsed);
    assert_int_equal(sleep.st, REDISCONN_TIMEOUT);
    assert_true(elapsed >= REDISCONN_TIMEOUT_MS - 50 && elapsed < REDISCONN_TIMEOUT_MS + 500);
    run_for(loop, 50);
    assert_int_equal(failures, 1);

    /* once the server is responsive again, the next command reconnects and succeeds */
    run_for(loop, 1200);
    result again = {0};
    command(c, capture, &again, "PING");
    assert_true(run_until(loop, &again.called, 3000));
    assert_int_equal(again.st, REDISCONN_OK);
    assert_int_equal(failures, 1);

    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
    result_reset(&ping);
    result_reset(&sleep);
    result_reset(&again);
}

static void test_connection_loss_and_reconnect(void **state)
{
    (void)state;
    priv_start(&g_priv);
    h2o_loop_t *loop = h2o_evloop_create();
    int fds = count_fds(); /* after the loop: h2o 2.2.5 never closes its epoll fd */
    config_redis ep = priv_endpoint(&g_priv);
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);

    result ping = {0}, blocked = {0};
    command(c, capture, &ping, "PING");
    assert_true(run_until(loop, &ping.called, 3000));
    assert_int_equal(ping.st, REDISCONN_OK);

    /* a pending command when the server dies */
    int64_t t0 = now_ms();
    command(c, capture, &blocked, "BLPOP redisconn-test:nothing 0");
    run_for(loop, 150);
    assert_int_equal(blocked.called, 0);
    priv_kill(&g_priv);
    assert_true(run_until(loop, &blocked.called, 3000));
    assert_int_equal(blocked.st, REDISCONN_UNAVAILABLE);
    assert_true(blocked.at_ms - t0 < REDISCONN_TIMEOUT_MS - 100); /* loss, not the timeout */
    run_for(loop, 50);
    assert_int_equal(failures, 1);

    /* while it is down: refused */
    result down = {0};
    command(c, capture, &down, "PING");
    assert_true(run_until(loop, &down.called, 3000));
    assert_int_equal(down.st, REDISCONN_UNAVAILABLE);
    run_for(loop, 50);
    assert_int_equal(failures, 2);

    /* restarted: the next command reconnects */
    priv_start(&g_priv);
    result up = {0};
    command(c, capture, &up, "PING");
    assert_true(run_until(loop, &up.called, 3000));
    assert_int_equal(up.st, REDISCONN_OK);
    assert_string_equal(up.str, "PONG");
    assert_int_equal(failures, 2);

    /* loss of an idle established connection is reported too */
    priv_kill(&g_priv);
    int target = 3;
    int64_t end = now_ms() + 2000;
    while (failures < target && now_ms() < end)
        h2o_evloop_run(loop, 10);
    assert_int_equal(failures, 3);

    priv_start(&g_priv);
    result up2 = {0};
    command(c, capture, &up2, "PING");
    assert_true(run_until(loop, &up2.called, 3000));
    assert_int_equal(up2.st, REDISCONN_OK);
    assert_int_equal(failures, 3);

    redisconn_destroy(c);
    assert_int_equal(count_fds(), fds); /* every hiredis socket closed exactly once */
    h2o_evloop_destroy(loop);
    result_reset(&ping);
    result_reset(&up);
    result_reset(&up2);
}

static void test_auth(void **state)
{
    (void)state;
    snprintf(g_priv.pass, sizeof(g_priv.pass), "s3cr%%et pw");
    priv_start(&g_priv);
    h2o_loop_t *loop = h2o_evloop_create();
    int failures = 0;

    /* right password, AUTH <password>; host name "localhost" */
    config_redis ep = priv_endpoint(&g_priv);
    ep.host = "localhost";
    ep.password = g_priv.pass;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    result set = {0}, get = {0};
    command(c, capture, &set, "SET redisconn-test:auth yes");
    command(c, capture, &get, "GET redisconn-test:auth");
    assert_true(run_until(loop, &get.called, 3000));
    assert_int_equal(set.st, REDISCONN_OK);
    assert_int_equal(set.type, REDIS_REPLY_STATUS);
    assert_int_equal(get.st, REDISCONN_OK);
    assert_string_equal(get.str, "yes");
    assert_int_equal(failures, 0);
    redisconn_destroy(c);

    /* AUTH <username> <password> */
    ep.username = "default";
    c = redisconn_create(loop, &ep, count_failure, &failures);
    result get2 = {0};
    command(c, capture, &get2, "GET redisconn-test:auth");
    assert_true(run_until(loop, &get2.called, 3000));
    assert_int_equal(get2.st, REDISCONN_OK);
    assert_string_equal(get2.str, "yes");
    assert_int_equal(failures, 0);
    redisconn_destroy(c);

    /* wrong password: a connection failure, reported promptly */
    ep.username = NULL;
    ep.password = "wrong";
    c = redisconn_create(loop, &ep, count_failure, &failures);
    result bad = {0};
    int64_t t0 = now_ms();
    command(c, capture, &bad, "GET redisconn-test:auth");
    assert_true(run_until(loop, &bad.called, 3000));
    assert_int_equal(bad.st, REDISCONN_UNAVAILABLE);
    assert_true(bad.at_ms - t0 < REDISCONN_TIMEOUT_MS / 2);
    run_for(loop, 50);
    assert_int_equal(failures, 1);
    redisconn_destroy(c);

    /* no password against a server that requires one: the pipelined SELECT is refused
     * (NOAUTH), which makes the connection unusable */
    ep.password = NULL;
    c = redisconn_create(loop, &ep, count_failure, &failures);
    result nosel = {0};
    command(c, capture, &nosel, "GET redisconn-test:auth");
    assert_true(run_until(loop, &nosel.called, 3000));
    assert_int_equal(nosel.st, REDISCONN_UNAVAILABLE);
    run_for(loop, 50);
    assert_int_equal(failures, 2);
    redisconn_destroy(c);

    /* ... and with db 0 (no SELECT) the command's own NOAUTH is an error reply, not a failure */
    ep.db = 0;
    c = redisconn_create(loop, &ep, count_failure, &failures);
    result noauth = {0};
    command(c, capture, &noauth, "GET redisconn-test:auth");
    assert_true(run_until(loop, &noauth.called, 3000));
    assert_int_equal(noauth.st, REDISCONN_ERROR_REPLY);
    assert_int_equal(noauth.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(noauth.str, "NOAUTH"));
    run_for(loop, 50);
    assert_int_equal(failures, 2);
    redisconn_destroy(c);

    h2o_evloop_destroy(loop);
    result_reset(&set);
    result_reset(&get);
    result_reset(&get2);
    result_reset(&bad);
    result_reset(&noauth);
    result_reset(&nosel);
}

static void test_select_refused_is_failure(void **state)
{
    (void)state;
    priv_start(&g_priv);
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = priv_endpoint(&g_priv);
    ep.db = 100000; /* beyond the server's 16 databases */
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    result r = {0};
    command(c, capture, &r, "PING");
    assert_true(run_until(loop, &r.called, 3000));
    assert_int_equal(r.st, REDISCONN_UNAVAILABLE);
    run_for(loop, 50);
    assert_int_equal(failures, 1);
    redisconn_destroy(c);
    h2o_evloop_destroy(loop);
}

static void test_destroy_with_pending(void **state)
{
    (void)state;
    h2o_loop_t *loop = h2o_evloop_create();
    config_redis ep = lead_endpoint();
    int failures = 0;
    redisconn *c = redisconn_create(loop, &ep, count_failure, &failures);
    result a = {0}, b = {0};
    command(c, capture, &a, "PING");
    run_for(loop, 20);
    command(c, capture, &b, "PING");
    redisconn_destroy(c); /* callbacks are dropped, nothing leaks (ASan) */
    run_for(loop, 100);
    assert_int_equal(b.called, 0);
    assert_int_equal(failures, 0);

    /* destroy while a failure report is pending */
    config_redis refused = {.host = "127.0.0.1", .port = 1};
    c = redisconn_create(loop, &refused, count_failure, &failures);
    result r = {0};
    command(c, capture, &r, "PING");
    redisconn_destroy(c);
    run_for(loop, 50);
    assert_int_equal(r.called, 0);
    assert_int_equal(failures, 0);

    h2o_evloop_destroy(loop);
    result_reset(&a);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_get_binary_safe),
        cmocka_unit_test(test_select_db_honoured),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_error_reply_is_not_failure),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_tls_rejected),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_connect_fails_immediately),
        cmocka_unit_test(test_retry_from_callback_does_not_spin),
        cmocka_unit_test(test_timeout_silent_server),
        cmocka_unit_test_teardown(test_debug_sleep_times_out, teardown_priv),
        cmocka_unit_test_teardown(test_connection_loss_and_reconnect, teardown_priv),
        cmocka_unit_test_teardown(test_auth, teardown_priv),
        cmocka_unit_test_teardown(test_select_refused_is_failure, teardown_priv),
        cmocka_unit_test(test_destroy_with_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
