/*
 * server/http_worker.h: entry point of an HTTP worker process (see http_worker.c).
 */
#ifndef ANALYTICSD_HTTP_WORKER_H
#define ANALYTICSD_HTTP_WORKER_H

#include "common/config.h"
#include "common/ring.h"

/*
 * Runs in the forked child: serves HTTP on listen_fd until SIGTERM/SIGINT, then drains and
 * exits. `slot` is the child's index in shared state; `number` the N of its title "http worker N"
 * (the access log's `worker`); `ring` is the job ring (producer side). Never returns normally;
 * returns an exit status (common/exitcodes.h) only when setup fails.
 */
int http_worker_main(const config *cfg, ring_t *ring, int listen_fd, int slot, int number);

#endif
