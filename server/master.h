/*
 * server/master.h: `analyticsd serve`, the supervising master process (CONFIG.md §5).
 */
#ifndef ANALYTICSD_MASTER_H
#define ANALYTICSD_MASTER_H

#include "common/config.h"

/*
 * Runs the server until it is stopped: startup steps of CONFIG.md §5.1, then supervision.
 * cfg has been validated; config_path (NULL if none) is the environment file re-read on
 * SIGHUP. Returns the process exit status: 0 after a clean stop, 1 on a startup failure or an
 * unclean stop.
 */
int master_run(config *cfg, const char *config_path);

#endif
