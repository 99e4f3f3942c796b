/*
 * common/redissync.c: blocking Redis helpers (see redissync.h). Runs in the supervisor and the
 * recompute workers.
 */
#include "common/redissync.h"

#include "common/log.h"
#include "common/shstate.h"

#include <stdio.h>
#include <string.h>

static const struct timeval redissync_limit = {1, 0};

static void fail(redisContext **c, const char *what)
{
    char why[160];
    snprintf(why, sizeof(why), "%s: %s", what, (*c)->errstr[0] ? (*c)->errstr : "failure");
    shstate_redis_mark_untrusted(why);
    redisFree(*c);
    *c = NULL;
}

redisReply *redissync_command(redisContext **c, int argc, const char **argv, const size_t *argvlen)
{
    if (*c == NULL)
        return NULL;
    redisReply *r = redisCommandArgv(*c, argc, argv, argvlen);
    if (r == NULL)
        fail(c, "redis command failed");
    return r;
}

static int setup_ok(redisContext **c, int argc, const char **argv, const char *what)
{
    redisReply *r = redissync_command(c, argc, argv, NULL);
    if (r == NULL)
        return 0;
    int ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) {
        log_warn("redis %s rejected: %s", what, r->str);
        shstate_redis_mark_untrusted("redis setup rejected");
        redisFree(*c);
        *c = NULL;
    }
    freeReplyObject(r);
    return ok;
}

redisContext *redissync_connect(const config_redis *ep)
{
    if (ep->tls) {
        shstate_redis_mark_untrusted("rediss:// (TLS) is not supported by this build");
        return NULL;
    }
    const char *host = strcmp(ep->host, "localhost") == 0 ? "127.0.0.1" : ep->host;
    redisContext *c = redisConnectWithTimeout(host, ep->port, redissync_limit);
    if (c == NULL || c->err) {
        if (c != NULL)
            fail(&c, "redis connect failed");
        else
            shstate_redis_mark_untrusted("redis connect failed: out of memory");
        return NULL;
    }
    redisSetTimeout(c, redissync_limit);
    if (ep->password != NULL) {
        const char *auth[] = {"AUTH", ep->username ? ep->username : ep->password, ep->password};
        if (!setup_ok(&c, ep->username ? 3 : 2, auth, "AUTH"))
            return NULL;
    }
    if (ep->db != 0) {
        char db[24];
        snprintf(db, sizeof(db), "%lld", (long long)ep->db);
        const char *sel[] = {"SELECT", db};
        if (!setup_ok(&c, 2, sel, "SELECT"))
            return NULL;
    }
    return c;
}
