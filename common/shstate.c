/*
 * common/shstate.c: the anonymous shared mapping of per-child slots and the Redis flag (see
 * shstate.h). Created by the master; read and written by every child.
 */
#include "common/shstate.h"

#include "common/log.h"

#include <stdlib.h>
#include <sys/mman.h>

shstate *shstate_global;

shstate *shstate_create(void)
{
    void *p =
        mmap(NULL, sizeof(shstate), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        log_error("cannot map shared state: out of memory");
        abort();
    }
    shstate_global = p; /* zero-filled by the kernel: Redis starts untrusted */
    return p;
}

int32_t shstate_fewest_http_connections(int self)
{
    int32_t fewest = -1;
    for (int i = SHSTATE_FIRST_HTTP_SLOT; shstate_global != NULL && i < SHSTATE_END_HTTP_SLOT;
         i++) {
        shstate_slot *s = &shstate_global->slots[i];
        if (i == self || atomic_load(&s->pid) == 0 || atomic_load(&s->ready) == 0)
            continue;
        int32_t n = atomic_load(&s->connections);
        if (fewest < 0 || n < fewest)
            fewest = n;
    }
    return fewest;
}

bool shstate_nats_connected(void)
{
    for (int i = SHSTATE_FIRST_INGEST_SLOT; shstate_global != NULL && i < SHSTATE_MAX_SLOTS; i++) {
        shstate_slot *s = &shstate_global->slots[i];
        if (atomic_load(&s->pid) != 0 && atomic_load(&s->nats_connected) == 1)
            return true;
    }
    return false;
}

bool shstate_redis_trusted(void)
{
    return shstate_global != NULL && atomic_load(&shstate_global->redis_trusted) == 1;
}

void shstate_redis_mark_untrusted(const char *why)
{
    if (shstate_global == NULL)
        return;
    atomic_fetch_add(&shstate_global->redis_failures, 1);
    if (atomic_exchange(&shstate_global->redis_trusted, 0) == 1)
        log_warn("redis marked untrusted: %s", why);
}

void shstate_redis_mark_trusted(void)
{
    if (shstate_global != NULL && atomic_exchange(&shstate_global->redis_trusted, 1) == 0)
        log_info("redis trusted again: cache enabled");
}
