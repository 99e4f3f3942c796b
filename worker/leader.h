/*
 * worker/leader.h: leadership of the whole deployment (SMS.md §3.3, §5): of all the supervisors
 * of all the instances sharing one PostgreSQL, exactly one leads at a time and runs the
 * deployment-wide periodic work (the SMS rollup and maintenance; the report scheduler later).
 * Runs in the supervisor.
 *
 * The leader holds a session-level advisory lock on its own PostgreSQL session. PostgreSQL
 * releases it when that session ends (the process died, the connection broke), so another
 * supervisor takes over at its next poll; nothing about leadership lives in one host's memory.
 */
#ifndef ANALYTICSD_LEADER_H
#define ANALYTICSD_LEADER_H

#include <libpq-fe.h>
#include <stdbool.h>

/* The advisory lock (two-key form, distinct from the one-key locks on run ids). */
#define LEADER_LOCK_CLASS 1634626676 /* 0x616e6c74, "anlt" */
#define LEADER_LOCK_ID    1

typedef struct leader {
    bool leading; /* as of the last poll */
} leader;

/*
 * Asks PostgreSQL, on conn (the caller's session, which holds the lock while it leads), whether
 * this process leads: it does if its session already holds the lock or takes it now. Logs when
 * leadership is gained or lost. A NULL conn or a failed query counts as not leading (the caller
 * resets a broken session; a new session has to take the lock again). Returns l->leading.
 */
bool leader_poll(leader *l, PGconn *conn);

#endif
