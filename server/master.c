/* Stub: replaced by the pre-forked master. */
#include "server/master.h"
#include "common/log.h"

int master_run(config *cfg, const char *config_path)
{
    (void)cfg;
    (void)config_path;
    log_error("serve: not implemented yet");
    return 1;
}
