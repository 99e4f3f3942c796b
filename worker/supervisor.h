/*
 * worker/supervisor.h: the supervisor child process: the database and Redis housekeeping that
 * the master must not do itself (CONFIG.md §5.1 steps 5–6, DATA.md §6.8–§6.9, §7.6).
 */
#ifndef ANALYTICSD_SUPERVISOR_H
#define ANALYTICSD_SUPERVISOR_H

#include "common/config.h"
#include "common/ring.h"

/* Runs until SIGTERM/SIGINT; returns the exit status (common/exitcodes.h). */
int supervisor_main(const config *cfg, ring_t *ring, int slot);

#endif
