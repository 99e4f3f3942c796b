/*
 * worker/recompute_worker.h: entry point of a recompute worker process.
 */
#ifndef ANALYTICSD_RECOMPUTE_WORKER_H
#define ANALYTICSD_RECOMPUTE_WORKER_H

#include <stdint.h>

#include "common/config.h"
#include "common/ring.h"

/*
 * Runs in the forked child: claims jobs from the ring as consumer `worker` until SIGTERM or
 * SIGINT, then returns the exit status (common/exitcodes.h). `slot` is its shared-state slot.
 */
int recompute_worker_main(const config *cfg, ring_t *ring, uint32_t worker, int slot);

#endif
