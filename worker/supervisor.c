/*
 * worker/supervisor.c: the supervisor process (forked by the master, one per service).
 *
 * Once a second it refreshes its heartbeat and, while Redis is untrusted, runs the recovery
 * bump of DATA.md §7.6: INCR report:version:{slug} for every report definition; when all
 * succeed, Redis becomes trusted for every process. The first pass happens before the master
 * starts the HTTP workers (startup_done in shared state).
 * It blocks freely: it serves no requests. Its sessions use application_name role
 * "supervisor".
 */
#include "worker/supervisor.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/redissync.h"
#include "common/shstate.h"
#include "common/util.h"
#include "server/exitcodes.h"
#include "worker/stopsignal.h"

#include <stdlib.h>
#include <string.h>

#define SUPERVISOR_TICK_MS 1000

typedef struct supervisor {
    const config *cfg;
    ring_t *ring;
    int slot;
    PGconn *pg;
} supervisor;

/* Returns the connection, reconnecting if it was lost; NULL if PostgreSQL is unreachable. */
static PGconn *supervisor_pg(supervisor *s)
{
    if (s->pg != NULL && PQstatus(s->pg) != CONNECTION_OK) {
        PQfinish(s->pg);
        s->pg = NULL;
    }
    if (s->pg == NULL)
        s->pg = pgsession_connect(s->cfg->database_url, "supervisor");
    return s->pg;
}

/* DATA.md §7.6 recovery bump. Returns 0 when every INCR succeeded. */
static int recovery_bump(supervisor *s)
{
    PGconn *pg = supervisor_pg(s);
    if (pg == NULL)
        return -1;
    PGresult *res = pgsession_exec(pg, "recovery bump: list reports",
                                   "SELECT slug FROM report_definitions ORDER BY slug", 0, NULL);
    if (res == NULL)
        return -1;
    redisContext *rc = redissync_connect(&s->cfg->redis);
    int ok = rc != NULL;
    for (int i = 0; ok && i < PQntuples(res); i++) {
        char *key = xasprintf("report:version:%s", PQgetvalue(res, i, 0));
        const char *argv[] = {"INCR", key};
        redisReply *r = redissync_command(&rc, 2, argv, NULL);
        ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
        if (r != NULL)
            freeReplyObject(r);
        free(key);
    }
    PQclear(res);
    if (rc != NULL)
        redisFree(rc);
    if (ok)
        shstate_redis_mark_trusted();
    return ok ? 0 : -1;
}

int supervisor_main(const config *cfg, ring_t *ring, int slot)
{
    supervisor s = {cfg, ring, slot, NULL};
    int stopfd = stopsignal_open();
    if (stopfd < 0)
        return EXIT_CHILD_CRASHED;
    atomic_store(&shstate_global->slots[slot].ready, 1);
    for (;;) {
        atomic_store(&shstate_global->slots[slot].heartbeat_ns, clock_monotonic_ns());
        if (!shstate_redis_trusted())
            recovery_bump(&s);
        atomic_store(&shstate_global->startup_done, 1);
        if (stopsignal_wait(stopfd, SUPERVISOR_TICK_MS))
            break;
    }
    PQfinish(s.pg);
    return EXIT_CHILD_STOPPED;
}
