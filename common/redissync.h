/*
 * common/redissync.h: blocking Redis connections for the processes that may block (the
 * supervisor and recompute workers), with the 1 s connect and command limits of DATA.md §7.
 * HTTP workers never use this: they use redisconn on their event loop.
 */
#ifndef ANALYTICSD_REDISSYNC_H
#define ANALYTICSD_REDISSYNC_H

#include <hiredis.h>

#include "common/config.h"

/*
 * Connects to ep with a 1 s limit, sets a 1 s command timeout, authenticates when a password is
 * configured and selects the database when it is not 0. Returns the context, or NULL after
 * logging why (and marking Redis untrusted in shared state).
 */
redisContext *redissync_connect(const config_redis *ep);

/*
 * Runs one command (argv form). Returns the reply (caller frees with freeReplyObject), or NULL
 * on a connection failure or timeout: then the context is freed, *c is set to NULL and Redis is
 * marked untrusted. An error reply is returned as a reply, not treated as a failure.
 */
redisReply *redissync_command(redisContext **c, int argc, const char **argv, const size_t *argvlen);

#endif
