/*
 * server/catalogue.c: the in-memory report catalogue of an HTTP worker and the ReportDefinition
 * JSON writer (see catalogue.h). Runs in HTTP workers, on the worker's event loop.
 *
 * The loaded copy is an array of (slug, catalogue_report) sorted by slug in byte order, looked
 * up by binary search. A reload builds a new array and swaps it in; nothing outside this file
 * keeps pointers into it (callers copy the TTL), so the old array is freed at once.
 */
#include "server/catalogue.h"

#include <stdlib.h>
#include <string.h>

#include "common/dates.h"
#include "common/json_out.h"
#include "common/json_sorted.h"
#include "common/log.h"
#include "common/registry.h"
#include "common/textutil.h"
#include "common/util.h"
#include "server/http_app.h"

#define CATALOGUE_LOAD_SQL                                                                         \
    "SELECT d.slug, d.cache_ttl_seconds, " CATALOGUE_WINDOWS_COLUMN                                \
    " FROM report_definitions d WHERE d.is_public ORDER BY d.slug COLLATE \"C\""

typedef struct catalogue_entry {
    char *slug;
    size_t slug_len;
    catalogue_report report;
} catalogue_entry;

struct catalogue {
    http_app *app;
    h2o_timeout_t reload_timeout; /* CATALOGUE_RELOAD_MS */
    h2o_timeout_t retry_timeout;  /* CATALOGUE_RETRY_MS */
    h2o_timeout_entry_t timer;
    pgpool_query *loading;
    int loaded;
    int failing; /* the last reload failed (logged once per change) */
    catalogue_entry *entries;
    size_t count;
};

static void catalogue_free_entries(catalogue_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(e[i].slug);
    free(e);
}

static void catalogue_schedule(catalogue *c)
{
    h2o_timeout_link(c->app->loop, c->loaded ? &c->reload_timeout : &c->retry_timeout, &c->timer);
}

static void on_loaded(void *data, pgpool_status st, PGresult *res)
{
    catalogue *c = data;
    c->loading = NULL;
    if (st != PGPOOL_OK) {
        if (!c->failing)
            log_warn("catalogue: reload failed; %s",
                     c->loaded ? "keeping the last good copy" : "not loaded yet");
        c->failing = 1;
        catalogue_schedule(c);
        return;
    }
    size_t n = (size_t)PQntuples(res);
    catalogue_entry *e = xcalloc(n + 1, sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        e[i].slug_len = (size_t)PQgetlength(res, (int)i, 0);
        e[i].slug = xstrndup(PQgetvalue(res, (int)i, 0), e[i].slug_len);
        catalogue_report_from_row(&e[i].report, res, (int)i, 1);
    }
    catalogue_free_entries(c->entries, c->count);
    c->entries = e;
    c->count = n;
    if (c->failing || !c->loaded)
        log_info("catalogue: loaded %zu public report(s)", n);
    c->loaded = 1;
    c->failing = 0;
    catalogue_schedule(c);
}

static void catalogue_reload(catalogue *c)
{
    if (c->loading != NULL)
        return;
    c->loading = pgpool_exec(c->app->pg, CATALOGUE_LOAD_SQL, 0, NULL, on_loaded, c);
    if (c->loading == NULL) /* the pool's queue is full: try again later */
        catalogue_schedule(c);
}

static void on_timer(h2o_timeout_entry_t *entry)
{
    catalogue *c = CONTAINER_OF(entry, catalogue, timer);
    catalogue_reload(c);
}

catalogue *catalogue_create(struct http_app *app)
{
    catalogue *c = xcalloc(1, sizeof(*c));
    c->app = app;
    h2o_timeout_init(app->loop, &c->reload_timeout, CATALOGUE_RELOAD_MS);
    h2o_timeout_init(app->loop, &c->retry_timeout, CATALOGUE_RETRY_MS);
    c->timer.cb = on_timer;
    catalogue_reload(c);
    return c;
}

static int slug_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Reads CATALOGUE_WINDOWS_COLUMN ("name:days,…", "" for NULL) into retention[] by registry
 * window; 0 for the windows it does not list. */
static void windows_parse(const char *text, int32_t retention[CATALOGUE_MAX_WINDOWS])
{
    memset(retention, 0, sizeof(int32_t) * CATALOGUE_MAX_WINDOWS);
    while (*text != '\0') {
        const char *colon = strchr(text, ':');
        if (colon == NULL)
            return;
        char name[16];
        size_t n = (size_t)(colon - text);
        char *end;
        long days = strtol(colon + 1, &end, 10);
        if (n < sizeof(name)) {
            memcpy(name, text, n);
            name[n] = '\0';
            const registry_window *w = registry_window_find(name);
            if (w != NULL && registry_window_index(w) < CATALOGUE_MAX_WINDOWS)
                retention[registry_window_index(w)] = (int32_t)days;
        }
        text = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0')
            return;
    }
}

void catalogue_report_from_row(catalogue_report *out, const PGresult *res, int row, int col)
{
    out->cache_ttl_seconds = (int32_t)strtol(PQgetvalue(res, row, col), NULL, 10);
    windows_parse(PQgetvalue(res, row, col + 1), out->retention_days);
}

catalogue_sort catalogue_sort_parse(const char *v, size_t len)
{
    static const char *const names[CATALOGUE_SORTS] = {"name", "slug", "updated_at",
                                                       "cache_ttl_seconds"};
    size_t start, n;
    text_trim(v, len, &start, &n);
    for (int i = 0; i < CATALOGUE_SORTS; i++)
        if (n == strlen(names[i]) && memcmp(v + start, names[i], n) == 0)
            return (catalogue_sort)i;
    return CATALOGUE_SORT_NAME;
}

const char *catalogue_list_sql(catalogue_sort sort, int desc)
{
    static const char *const order_by[CATALOGUE_SORTS] = {
        "m.name COLLATE \"C\"", "m.slug COLLATE \"C\"", "m.sort_updated_at", "m.sort_ttl"};
    static char *built[CATALOGUE_SORTS][2];
    desc = desc != 0;
    if (built[sort][desc] == NULL) {
        const char *dir = desc ? "DESC" : "ASC";
        built[sort][desc] = xasprintf(
            "WITH p AS (SELECT '%%' || replace(replace(replace($1::text, '\\', '\\\\'),"
            " '%%', '\\%%'), '_', '\\_') || '%%' AS pattern),"
            " m AS (SELECT " CATALOGUE_DEFINITION_COLUMNS ", d.updated_at AS sort_updated_at,"
            " d.cache_ttl_seconds AS sort_ttl"
            " FROM report_definitions d, p WHERE d.is_public AND ($1::text IS NULL"
            " OR d.slug ILIKE p.pattern OR d.name ILIKE p.pattern)),"
            " page AS (SELECT m.*, row_number() OVER (ORDER BY %s %s, m.slug COLLATE \"C\" %s)"
            " AS rn FROM m ORDER BY rn LIMIT $2::bigint OFFSET $3::bigint)"
            " SELECT (SELECT count(*) FROM m), page.slug, page.name, page.description,"
            " page.cache_ttl_seconds, page.default_window, page.windows,"
            " page.supported_filters, page.last_rebuilt_at"
            " FROM (SELECT 1) one LEFT JOIN page ON true ORDER BY page.rn",
            order_by[sort], dir, dir);
    }
    return built[sort][desc];
}

int catalogue_is_loaded(const catalogue *c)
{
    return c != NULL && c->loaded;
}

catalogue_status catalogue_lookup(const catalogue *c, const char *slug, size_t len,
                                  catalogue_report *out)
{
    if (c == NULL || !c->loaded)
        return CATALOGUE_NOT_LOADED;
    size_t lo = 0, hi = c->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = slug_cmp(c->entries[mid].slug, c->entries[mid].slug_len, slug, len);
        if (r == 0) {
            *out = c->entries[mid].report;
            return CATALOGUE_FOUND;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return CATALOGUE_NOT_FOUND;
}

/* ---- ReportDefinition JSON --------------------------------------------------------------- */

int catalogue_filters_json(jbuf *b, const char *text, size_t len)
{
    /* supported_filters is an object of string → string; keys come out in byte order. */
    if (len == 0 || text[0] != '{')
        return -1;
    return jout_sorted(b, text, len);
}

static void put_text(jbuf *b, const PGresult *res, int row, int col)
{
    jout_string(b, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

int catalogue_definition_json(jbuf *b, const PGresult *res, int row, int col)
{
    jbuf_puts(b, "{\"slug\":");
    put_text(b, res, row, col);
    jbuf_puts(b, ",\"name\":");
    put_text(b, res, row, col + 1);
    jbuf_puts(b, ",\"description\":");
    put_text(b, res, row, col + 2);
    jbuf_puts(b, ",\"cache_ttl_seconds\":");
    jbuf_append(b, PQgetvalue(res, row, col + 3), (size_t)PQgetlength(res, row, col + 3));
    jbuf_puts(b, ",\"default_window\":");
    put_text(b, res, row, col + 4);
    /* allowed_windows: the report API's windows the report has, in registry order (day first) */
    int32_t retention[CATALOGUE_MAX_WINDOWS];
    windows_parse(PQgetvalue(res, row, col + 5), retention);
    jbuf_puts(b, ",\"allowed_windows\":[");
    int listed = 0;
    for (size_t w = 0; w < registry_window_count && w < CATALOGUE_MAX_WINDOWS; w++) {
        if (!registry_windows[w].report_api || retention[w] <= 0)
            continue;
        if (listed++ > 0)
            jbuf_putc(b, ',');
        jout_cstr(b, registry_windows[w].name);
    }
    jbuf_puts(b, "],\"supported_filters\":");
    if (catalogue_filters_json(b, PQgetvalue(res, row, col + 6),
                               (size_t)PQgetlength(res, row, col + 6)) != 0)
        return -1;
    int64_t sec;
    int32_t nanos;
    if (!PQgetisnull(res, row, col + 7) &&
        pgtime_parse(PQgetvalue(res, row, col + 7), &sec, &nanos) == 0) {
        jbuf_puts(b, ",\"last_rebuilt_at\":");
        jout_timestamp(b, sec, nanos);
    }
    jbuf_putc(b, '}');
    return 0;
}
