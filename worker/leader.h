/*
 * worker/leader.h: leadership of the whole deployment (SMS.md §3.3, §5): of all the supervisors
 * of all the instances sharing one PostgreSQL, exactly one leads at a time and runs the
 * deployment-wide periodic work (the SMS rollup and maintenance; the report scheduler later).
 * Runs in the supervisor.
 *
 * The leader holds a session-level advisory lock on a PostgreSQL session of its own (role
 * "leader"), used for nothing else: the supervisor's other work (long maintenance statements,
 * a session reset after a failure) never touches it. PostgreSQL releases the lock when that
 * session ends (the process died, the connection broke), so another supervisor takes over at
 * its next poll; nothing about leadership lives in one host's memory.
 */
#ifndef ANALYTICSD_LEADER_H
#define ANALYTICSD_LEADER_H

#include "common/pgsession.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/* The advisory lock (two-key form, distinct from the one-key locks on run ids). */
#define LEADER_LOCK_CLASS 1634626676 /* 0x616e6c74, "anlt" */
#define LEADER_LOCK_ID    1

typedef struct leader {
    const char *url;        /* DATABASE_URL (not owned) */
    pgsession_kept session; /* holds the lock while leading (reconnects once a second) */
    bool leading;           /* as of the last poll */
} leader;

/* A leader that is not leading and not connected, for the database at url. */
void leader_init(leader *l, const char *url);

/*
 * Asks PostgreSQL whether this process leads: it does if its session already holds the lock
 * or takes it now. (Re)connects the session when needed, at most once a second. Logs when
 * leadership is gained or lost. A failed connection or query counts as not leading (the broken
 * session is closed, which releases the lock if it still held it). Returns l->leading.
 */
bool leader_poll(leader *l);

/* Closes the session (releasing leadership). */
void leader_close(leader *l);

#endif
