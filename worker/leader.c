/*
 * worker/leader.c: deployment-wide leadership through a PostgreSQL advisory lock (see
 * leader.h). Runs in the supervisor.
 */
#include "worker/leader.h"

#include "common/log.h"
#include "common/pgsession.h"
#include "common/util.h"

#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x)  STR_(x)

/* Already held by this session (pg_locks, no new lock reference), or taken now. */
static const char LEADER_POLL_SQL[] =
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
    "AND pid = pg_backend_pid() AND granted AND classid = " STR(
        LEADER_LOCK_CLASS) "::oid "
                           "AND objid = " STR(
                               LEADER_LOCK_ID) "::oid AND objsubid = 2) THEN true "
                                               "ELSE pg_try_advisory_lock(" STR(
                                                   LEADER_LOCK_CLASS) ", " STR(LEADER_LOCK_ID) ") "
                                                                                               "EN"
                                                                                               "D";

#define LEADER_RECONNECT_NS 1000000000LL

void leader_init(leader *l, const char *url)
{
    memset(l, 0, sizeof(*l));
    l->url = url;
}

void leader_close(leader *l)
{
    pgsession_kept_close(&l->session);
    l->leading = false;
}

bool leader_poll(leader *l)
{
    bool now = false;
    PGconn *conn = pgsession_kept_get(&l->session, l->url, "leader", LEADER_RECONNECT_NS);
    if (conn != NULL) {
        PGresult *res = pgsession_exec(conn, "leadership", LEADER_POLL_SQL, 0, NULL);
        if (res != NULL) {
            now = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
            PQclear(res);
        } else {
            pgsession_kept_close(&l->session); /* whatever it held goes with it */
        }
    }
    if (now && !l->leading)
        log_info("leadership: this instance now runs the deployment-wide SMS rollup and upkeep");
    else if (!now && l->leading)
        log_warn("leadership: lost (another instance takes over)");
    l->leading = now;
    return now;
}
