/* Stub: replaced by the migration runner. */
#include "common/migrate.h"
#include "common/log.h"

int migrate_run(PGconn *conn)
{
    (void)conn;
    log_error("migrate: not implemented yet");
    return -1;
}
