/* Stub: replaced by the seed. */
#include "seed/seed.h"
#include "common/log.h"

int seed_run(PGconn *conn, bool force)
{
    (void)conn;
    (void)force;
    log_error("seed: not implemented yet");
    return -1;
}
