/*
 * server/handlers/report_run.c: GET /api/v1/reports/{slug}/run (API.md §4.4, §6, §7). Runs in
 * HTTP workers, entirely on the worker's event loop.
 *
 * Steps, in the contract's check order: dates; report lookup in the worker's in-memory
 * catalogue (a live query only until the catalogue has loaded once); window; span; breakdown;
 * limit; offset; then the cache lookup (one Redis round trip, report_cache.h) and on a miss
 * the snapshot query (report_query.h), or the 404 for a public report this service cannot run.
 *
 * The hit path touches neither PostgreSQL nor the catalogue's database: parameters are decoded
 * into the request's pool, the canonical JSON is hashed, one MGET answers, the stored entry
 * is checked (jansson, or a memcmp against the worker's memo of entries already checked) and
 * sent with its two members rewritten. With local copies (REPORT_LOCAL_CACHE_MB,
 * server/redistrack.h) a key this worker holds is answered after the invalidation barrier
 * instead, without a lookup; a Redis hit stamped while copies were usable is copied.
 *
 * On a miss the response is sent once Redis has acknowledged the cache write (or failed), so a
 * client that reads again at once, on any worker, finds the entry.
 *
 * Pending work (a query, a Redis command) lives in the request's pool; the dispose hook cancels
 * it when the client goes away first, and every callback forgets its handle before anything
 * else (health.c pattern). A Redis failure or error reply never fails the request.
 */
#include <stdlib.h>
#include <string.h>

#include "common/cachekey.h"
#include "common/dates.h"
#include "common/json_out.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/params.h"
#include "common/shstate.h"
#include "common/util.h"
#include "server/catalogue.h"
#include "server/http_app.h"
#include "server/http_query.h"
#include "server/http_response.h"
#include "server/report_cache.h"
#include "server/report_query.h"
#include "server/redistrack.h"

#define RUN_DEFAULT_LIMIT 50
#define RUN_MAX_LIMIT     100
/* MGETs per request at most: a stale guess or a missing version key costs one more each. */
#define RUN_LOOKUP_ATTEMPTS 3

typedef struct text {
    const char *p; /* NULL when absent */
    size_t len;
} text;

typedef struct run_state {
    http_app *app;
    h2o_req_t *req;
    pgpool_query *pg;
    redisconn_cmd *redis;
    const char *slug; /* the raw path segment, NUL-terminated copy in the pool */
    size_t slug_len;
    const registry_report *rep; /* NULL: a public report this service cannot run */
    catalogue_report report;    /* cache TTL and window retentions */
    int32_t retained_from;      /* meta.retained_from, or -1 when the range is all retained */
    jbuf freshness;             /* meta.freshness of a computed result: {} or {"rebuilt_at":…} */
    char etag[48];              /* W/"<version>-<hash prefix>" once the version is known, or "" */
    registry_layout layout;     /* of a computed result */
    int64_t exec_ms;            /* of the snapshot query */
    query_param *params;        /* the query string, decoded once (in the pool) */
    size_t nparams;
    int32_t date_from, date_to;
    const char *window;
    text breakdown, source, status; /* trimmed */
    int breakdown_kind;             /* registry_breakdown */
    int64_t limit, offset;
    char hash[65];
    char *key; /* cache key for the write after a miss; NULL = do not write */
    size_t key_len;
    int64_t guess;  /* the version the next lookup assumes */
    int lookups;    /* MGETs sent */
    uint64_t stamp; /* redistrack_stamp before the last MGET: may its hit be copied locally? */
    redistrack_wait wait; /* waiting for the barrier before a local copy is served */
    int64_t query_started_ns;
    jbuf pending; /* a computed response waiting for its cache write to be acknowledged */
} run_state;

_Static_assert(sizeof(((run_state *)0)->etag) >= 3 + JOUT_INT_MAX + 1 + 16 + 2, "etag room");

static void run_dispose(void *p)
{
    run_state *s = p;
    if (s->pg != NULL)
        pgpool_cancel(s->pg);
    if (s->redis != NULL)
        redisconn_cancel(s->redis);
    redistrack_cancel(&s->wait);
    jbuf_free(&s->pending);
    jbuf_free(&s->freshness);
}

static text param(run_state *s, const char *name)
{
    const query_param *q = query_find(s->params, s->nparams, name);
    return q != NULL ? (text){q->value, q->value_len} : (text){NULL, 0};
}

static text trimmed(text t)
{
    size_t start;
    text_trim(t.p, t.len, &start, &t.len);
    t.p = t.len == 0 ? "" : t.p + start;
    return t;
}

/* The 500 message of a failed snapshot query (API.md §1.6): the report's own. */
static const char *failure_message(const run_state *s)
{
    return s->rep != NULL ? s->rep->failure_message : "internal error";
}

/* ---- the result -------------------------------------------------------------------------- */

/*
 * meta.retained_from (README, "Scheduled refresh and retention"): the first bucket start the
 * window keeps, when the requested range reaches before it (its older snapshots have been, or
 * are about to be, deleted by the scheduler's retention pass), else -1. The same date as
 * refresh_keep_from() of schema/0006_refresh.sql: the first bucket start on or after today (UTC)
 * minus retention_days (for weeks the Monday on or after it); a bucket is compared by its start.
 */
static int32_t retained_from(const run_state *s)
{
    const registry_window *w = registry_window_find(s->window);
    size_t wi = registry_window_index(w);
    int32_t days = wi < CATALOGUE_MAX_WINDOWS ? s->report.retention_days[wi] : 0;
    if (days <= 0)
        return -1;
    int32_t keep = date_today_utc() - days;
    while (registry_window_floor(w, keep) != keep) /* a bucket is kept only whole */
        keep++;
    int32_t lower = registry_window_floor(w, s->date_from);
    return lower < keep ? keep : -1;
}

/* Closes the meta object: the retained_from member when there is one, then "}}". */
static void meta_close(jbuf *b, int32_t retained)
{
    if (retained >= 0) {
        jbuf_puts(b, ",\"retained_from\":");
        jout_date(b, retained);
    }
    jbuf_puts(b, "}}");
}

/* The conditional-read headers of a 200 or 304 answer (API.md §4.4), when the version is known
 * (caching applies and Redis was trusted for the lookup). */
static void add_cache_headers(run_state *s)
{
    if (s->etag[0] == '\0')
        return;
    h2o_req_t *req = s->req;
    size_t etag_len = strlen(s->etag);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL,
                   h2o_strdup(&req->pool, s->etag, etag_len).base, etag_len);
    static const char max_age[] = "public, max-age=";
    char *cc = h2o_mem_alloc_pool(&req->pool, sizeof(max_age) - 1 + JOUT_INT_MAX);
    memcpy(cc, max_age, sizeof(max_age) - 1);
    size_t n =
        sizeof(max_age) - 1 + jout_int_chars(cc + sizeof(max_age) - 1, s->report.cache_ttl_seconds);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, cc, n);
}

static void send_ok(run_state *s, jbuf *b)
{
    add_cache_headers(s);
    http_send_jbuf(s->req, 200, b);
}

/* The cache write is acknowledged (or failed, which only affects the trusted flag): answer. */
static void on_stored(void *data, redisconn_status st, redisReply *reply)
{
    (void)st;
    (void)reply;
    run_state *s = data;
    s->redis = NULL;
    jbuf b = s->pending;
    jbuf_init(&s->pending);
    send_ok(s, &b);
}

/* Sets s->freshness from finished_at as PostgreSQL prints it (UTC session), or NULL for none. */
static void set_freshness(run_state *s, const char *finished_at)
{
    int64_t sec;
    int32_t nanos;
    jbuf_reset(&s->freshness);
    if (finished_at == NULL || pgtime_parse(finished_at, &sec, &nanos) != 0) {
        jbuf_puts(&s->freshness, "{}");
        return;
    }
    jbuf_puts(&s->freshness, "{\"rebuilt_at\":");
    jout_timestamp(&s->freshness, sec, nanos);
    jbuf_putc(&s->freshness, '}');
}

/* Writes the response for a freshly computed result (s->freshness set); when a key was
 * resolved, stores the entry (data and freshness) first and answers once Redis has
 * acknowledged it. */
static void send_fresh(run_state *s, registry_layout layout, const PGresult *res, int64_t exec_ms)
{
    int64_t now = clock_realtime_ns();
    jbuf b;
    jbuf_init(&b);
    jbuf_reserve(&b, 512);
    jbuf_puts(&b, "{\"data\":");
    size_t data_start = b.len;
    jbuf_puts(&b, "{\"report_slug\":");
    jout_string(&b, s->slug, s->slug_len);
    jbuf_puts(&b, ",\"window\":");
    jout_cstr(&b, s->window);
    jbuf_puts(&b, ",\"date_from\":");
    jout_date(&b, s->date_from);
    jbuf_puts(&b, ",\"date_to\":");
    jout_date(&b, s->date_to);
    jbuf_puts(&b, ",\"generated_at\":");
    jout_timestamp(&b, now / 1000000000, (int32_t)(now % 1000000000));
    jbuf_puts(&b, ",\"rows\":");
    int rows = 0;
    if (res != NULL) {
        report_query_rows_json(&b, s->rep, layout, res);
        rows = PQntuples(res);
    } else {
        jbuf_puts(&b, "[]");
    }
    jbuf_puts(&b, ",\"cache_hit\":false,\"row_count\":");
    jout_int(&b, rows);
    jbuf_puts(&b, ",\"execution_ms\":");
    jout_int(&b, exec_ms);
    jbuf_puts(&b, ",\"source_system\":\"postgres\"}");
    size_t data_end = b.len;
    jbuf_puts(&b, ",\"meta\":{\"cache_hit\":false,\"freshness\":");
    jbuf_append(&b, s->freshness.data, s->freshness.len);
    meta_close(&b, s->retained_from);
    if (s->key != NULL && s->app->redis != NULL && shstate_redis_trusted()) {
        jbuf value;
        jbuf_init(&value);
        cache_entry_value(&value, b.data + data_start, data_end - data_start, s->freshness.data,
                          s->freshness.len);
        s->pending = b;
        s->redis = cache_store(s->app->redis, s->key, s->key_len, value.data, value.len,
                               s->report.cache_ttl_seconds, on_stored, s);
        jbuf_free(&value);
        return;
    }
    send_ok(s, &b);
}

/*
 * The 500 after a failed query of the run (snapshot or freshness): API.md §7.2 answers
 * `internal error` while PostgreSQL is unreachable, §4.4 the report's own message when the
 * database answered but the query failed. st says which: only a statement error (or an
 * answer of the wrong shape, st == PGPOOL_OK) comes from a database that answers; a timeout
 * means it did not answer within the deadline, which the contract treats as unreachable.
 */
static void send_query_failure(run_state *s, pgpool_status st)
{
    int answered = st == PGPOOL_STATEMENT_ERROR || st == PGPOOL_OK;
    http_send_error(s->req, 500, answered ? failure_message(s) : "internal error");
}

/* A result without rows still says how fresh it is: one more (cheap) query. */
static void on_freshness(void *data, pgpool_status st, PGresult *res)
{
    run_state *s = data;
    s->pg = NULL;
    if (st != PGPOOL_OK || PQntuples(res) != 1) {
        send_query_failure(s, st);
        return;
    }
    set_freshness(s, PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0));
    send_fresh(s, s->layout, NULL, s->exec_ms);
}

static void send_empty(run_state *s)
{
    char from[11], to[11];
    date_format(s->date_from, from);
    date_format(s->date_to, to);
    const char *params[] = {s->slug, s->window, from, to};
    s->pg = pgpool_exec(s->app->pg, REPORT_FRESHNESS_SQL, 4, params, on_freshness, s);
    if (s->pg == NULL)
        http_send_error(s->req, 500, failure_message(s));
}

static void on_snapshot(void *data, pgpool_status st, PGresult *res)
{
    run_state *s = data;
    s->pg = NULL;
    if (st != PGPOOL_OK) {
        send_query_failure(s, st);
        return;
    }
    s->exec_ms = (clock_monotonic_ns() - s->query_started_ns) / 1000000;
    if (PQntuples(res) == 0) {
        send_empty(s);
        return;
    }
    int col = report_query_freshness_column(s->layout);
    set_freshness(s, PQgetisnull(res, 0, col) ? NULL : PQgetvalue(res, 0, col));
    send_fresh(s, s->layout, res, s->exec_ms);
}

/* Step 8 after a miss (or without cache), then step 9. */
static void run_miss(run_state *s)
{
    if (s->rep == NULL) {
        http_send_error(s->req, 404, "report was not found");
        return;
    }
    s->layout = s->rep->layouts[s->breakdown_kind];
    const char *filter = NULL;
    if (s->rep->filter_param != NULL) {
        text f = trimmed(param(s, s->rep->filter_param));
        if (f.len != 0 && !text_is_matchable(f.p, f.len)) {
            send_empty(s); /* API.md §2.3: nothing can match */
            return;
        }
        if (f.len != 0)
            filter = h2o_strdup(&s->req->pool, f.p, f.len).base;
    }
    const registry_window *w = registry_window_find(s->window);
    char from[11], upper[11], limit[24], offset[24], lower[11];
    date_format(s->date_from, from);
    date_format(s->date_to, upper);
    snprintf(limit, sizeof(limit), "%lld", (long long)s->limit);
    snprintf(offset, sizeof(offset), "%lld", (long long)s->offset);
    date_format(registry_window_floor(w, s->date_from), lower);
    const char *params[] = {s->slug, s->window, from, upper, filter, limit, offset, lower};
    const char *sql = report_query_sql(s->rep, s->layout, w);
    s->query_started_ns = clock_monotonic_ns();
    s->pg = pgpool_exec(s->app->pg, sql, 8, params, on_snapshot, s);
    if (s->pg == NULL)
        http_send_error(s->req, 500, failure_message(s));
}

static void on_cache_lookup(void *data, redisconn_status st, redisReply *reply);

/* One cache hit or miss of this report (README, "Metrics"). */
static void count_cache(const run_state *s, _Atomic uint64_t *per_report)
{
    metrics_add(&per_report[metrics_report_index(s->slug, s->slug_len)], 1);
}

static void lookup(run_state *s)
{
    s->lookups++;
    s->stamp = s->app->track != NULL ? redistrack_stamp(s->app->track) : 0;
    s->redis =
        cache_lookup(s->app->redis, s->slug, s->slug_len, s->guess, s->hash, on_cache_lookup, s);
}

/* The version is known (a hit or a miss): sets the ETag, and answers 304 when the request's
 * If-None-Match names it. Returns 1 when the 304 was sent. */
static int answer_conditional(run_state *s, int64_t version)
{
    /* W/"<version>-<first 16 hex digits of the hash>" (API.md §4.4), without printf: this runs
     * on every cached read. */
    char *p = s->etag;
    memcpy(p, "W/\"", 3);
    p += 3;
    p += jout_int_chars(p, version);
    *p++ = '-';
    memcpy(p, s->hash, 16);
    p += 16;
    *p++ = '"';
    *p = '\0';
    if (!http_if_none_match(s->req, s->etag))
        return 0;
    add_cache_headers(s);
    http_send_not_modified(s->req);
    return 1;
}

/* Answers a cache hit with its response body (report_cache.h, cache_hit_response). */
static void send_hit(run_state *s, const char *body, size_t body_len)
{
    count_cache(s, metrics_self->counters.cache_hits);
    add_cache_headers(s);
    if (s->retained_from < 0) {
        http_send_body(s->req, 200, body, body_len);
        return;
    }
    /* The hit body ends with "}}\n" (report_cache.h): reopen its meta object. */
    jbuf b;
    jbuf_init(&b);
    jbuf_append(&b, body, body_len - 3);
    meta_close(&b, s->retained_from);
    http_send_jbuf(s->req, 200, &b);
}

/*
 * The barrier of a local copy has passed (redistrack.h): every invalidation of a write Redis
 * acknowledged before this request arrived has been processed, so a copy still held is
 * current. Without one (or when the barrier failed) the lookup goes to Redis as usual.
 */
static void on_synced(redistrack_wait *w, int ok)
{
    run_state *s = H2O_STRUCT_FROM_MEMBER(run_state, wait, w);
    int64_t version;
    const char *body;
    size_t len;
    if (ok && shstate_redis_trusted() &&
        redistrack_get(s->app->track, s->slug, s->slug_len, s->hash, &version, &body, &len) == 0) {
        if (answer_conditional(s, version))
            return;
        count_cache(s, metrics_self->counters.report_local_hits);
        send_hit(s, body, len);
        return;
    }
    if (!shstate_redis_trusted()) {
        run_miss(s);
        return;
    }
    s->guess = cache_version_guess(s->slug, s->slug_len);
    lookup(s);
}

static void on_cache_lookup(void *data, redisconn_status st, redisReply *reply)
{
    run_state *s = data;
    s->redis = NULL;
    int64_t version = 0;
    const char *value = NULL;
    size_t len = 0;
    cache_reply_status cs = cache_lookup_reply(st, reply, s->guess, &version, &value, &len);
    int again = s->lookups < RUN_LOOKUP_ATTEMPTS && shstate_redis_trusted();
    if (cs == CACHE_REPLY_ABSENT && again) {
        cache_version_create(s->app->redis, s->slug, s->slug_len);
        s->guess = 1;
        lookup(s);
        return;
    }
    if (cs == CACHE_REPLY_ABSENT)
        cs = CACHE_REPLY_OFF;
    if (cs == CACHE_REPLY_STALE) {
        cache_version_remember(s->slug, s->slug_len, version);
        if (again) {
            s->guess = version;
            lookup(s);
            return;
        }
        cs = CACHE_REPLY_MISS; /* the entry under this version was not read: a miss */
    }
    if ((cs == CACHE_REPLY_HIT || cs == CACHE_REPLY_MISS) && answer_conditional(s, version))
        return;
    if (cs == CACHE_REPLY_HIT) {
        char from[11], to[11];
        date_format(s->date_from, from);
        date_format(s->date_to, to);
        cache_expect x = {s->slug, s->slug_len, s->window, from, to};
        const char *body;
        size_t body_len;
        if (cache_hit_response(s->hash, version, value, len, &x, &body, &body_len) == 0) {
            redistrack_fill(s->app->track, s->app->redis, s->stamp, s->slug, s->slug_len, version,
                            s->hash, body, body_len);
            send_hit(s, body, body_len);
            return;
        }
        log_warn("report cache: unusable entry for %s; recomputing", s->slug);
    }
    if (cs == CACHE_REPLY_HIT || cs == CACHE_REPLY_MISS) {
        count_cache(s, metrics_self->counters.cache_misses);
        /* The key of this lookup's version: the write after the miss reads no version again. */
        jbuf k;
        jbuf_init(&k);
        cachekey_entry(&k, s->slug, s->slug_len, version, s->hash);
        s->key = h2o_strdup(&s->req->pool, k.data, k.len).base;
        s->key_len = k.len;
        jbuf_free(&k);
    }
    run_miss(s);
}

/* Steps 3–8, once the report is known to exist (TTL set). */
static void run_validated(run_state *s)
{
    text window = param(s, "window");
    if (param_window(window.p, window.len, &s->window) != 0) {
        http_send_error(s->req, 400, registry_window_message(1));
        return;
    }
    s->retained_from = retained_from(s);
    if (date_span_days(s->date_from, s->date_to) > s->app->cfg->max_report_range_days) {
        char msg[64];
        snprintf(msg, sizeof(msg), "date range exceeds %lld days",
                 (long long)s->app->cfg->max_report_range_days);
        http_send_error(s->req, 400, msg);
        return;
    }
    s->breakdown = trimmed(param(s, "breakdown"));
    s->breakdown_kind = registry_breakdown_parse(s->breakdown.p, s->breakdown.len);
    if (s->breakdown_kind < 0) {
        http_send_error(s->req, 400, REGISTRY_BREAKDOWN_MESSAGE);
        return;
    }
    text v = param(s, "limit");
    s->limit = RUN_DEFAULT_LIMIT;
    param_int(v.p, v.len, v.p != NULL, &s->limit);
    if (s->limit < 1 || s->limit > RUN_MAX_LIMIT) {
        http_send_error(s->req, 400, "limit must be between 1 and 100");
        return;
    }
    v = param(s, "offset");
    s->offset = 0;
    param_int(v.p, v.len, v.p != NULL, &s->offset);
    if (s->offset < 0) {
        http_send_error(s->req, 400, "offset must be non-negative");
        return;
    }
    s->source = trimmed(param(s, "source"));
    s->status = trimmed(param(s, "status"));

    if (s->report.cache_ttl_seconds <= 0 || s->app->redis == NULL || !shstate_redis_trusted()) {
        run_miss(s);
        return;
    }
    struct cachekey_params kp = {.breakdown = s->breakdown.p,
                                 .breakdown_len = s->breakdown.len,
                                 .date_from = s->date_from,
                                 .date_to = s->date_to,
                                 .limit = s->limit,
                                 .offset = s->offset,
                                 .source = s->source.p,
                                 .source_len = s->source.len,
                                 .status = s->status.p,
                                 .status_len = s->status.len,
                                 .window = s->window};
    jbuf canon;
    jbuf_init(&canon);
    jbuf_reserve(&canon, 256);
    cachekey_canonical(&canon, &kp);
    cachekey_sha256_hex(canon.data, canon.len, s->hash);
    jbuf_free(&canon);
    int64_t version;
    const char *body;
    size_t len;
    if (s->app->track != NULL &&
        redistrack_get(s->app->track, s->slug, s->slug_len, s->hash, &version, &body, &len) == 0 &&
        redistrack_sync(s->app->track, &s->wait, on_synced) == 0)
        return; /* a local copy exists: served (or not) once the barrier has passed */
    s->guess = cache_version_guess(s->slug, s->slug_len);
    lookup(s);
}

static void on_live_lookup(void *data, pgpool_status st, PGresult *res)
{
    run_state *s = data;
    s->pg = NULL;
    if (st != PGPOOL_OK) {
        http_send_error(s->req, 500, "internal error");
        return;
    }
    if (PQntuples(res) == 0) {
        http_send_error(s->req, 404, "report was not found");
        return;
    }
    catalogue_report_from_row(&s->report, res, 0, 0);
    run_validated(s);
}

void report_run_handle(http_app *app, h2o_req_t *req, const route_match *m)
{
    run_state *s = h2o_mem_alloc_shared(&req->pool, sizeof(*s), run_dispose);
    memset(s, 0, sizeof(*s));
    s->app = app;
    s->req = req;
    s->retained_from = -1;
    jbuf_init(&s->freshness);
    size_t qs_len;
    const char *qs = http_query_string(req, &qs_len);
    s->params = h2o_mem_alloc_pool(&req->pool, query_piece_bound(qs, qs_len) * sizeof(*s->params));
    s->nparams = query_parse(qs, qs_len, s->params, h2o_mem_alloc_pool(&req->pool, qs_len + 1));

    /* 1. Date range. */
    text from = param(s, "date_from"), to = param(s, "date_to");
    date_range_status ds = date_range_resolve(from.p, from.len, to.p, to.len, date_today_utc(),
                                              &s->date_from, &s->date_to);
    if (ds != DATE_RANGE_OK) {
        http_send_error(req, 400, date_range_message(ds));
        return;
    }

    /* 2. Report lookup among public reports. */
    if (!text_is_matchable(m->param, m->param_len)) {
        http_send_error(req, 404, "report was not found");
        return;
    }
    s->slug = h2o_strdup(&req->pool, m->param, m->param_len).base;
    s->slug_len = m->param_len;
    s->rep = registry_report_find(s->slug, s->slug_len);
    switch (catalogue_lookup(app->catalogue, s->slug, s->slug_len, &s->report)) {
    case CATALOGUE_FOUND:
        run_validated(s);
        return;
    case CATALOGUE_NOT_FOUND:
        http_send_error(req, 404, "report was not found");
        return;
    case CATALOGUE_NOT_LOADED:
        break;
    }
    const char *params[] = {s->slug};
    s->pg = pgpool_exec(app->pg, CATALOGUE_REPORT_SQL, 1, params, on_live_lookup, s);
    if (s->pg == NULL)
        http_send_error(req, 500, "internal error");
}
