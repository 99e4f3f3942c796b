/*
 * worker/ingest_worker.h: the ingest worker child process (SMS.md §4): NATS JetStream durable
 * pull consumers counted exactly once into the anlyt aggregates. Design: worker/README.md.
 */
#ifndef ANALYTICSD_INGEST_WORKER_H
#define ANALYTICSD_INGEST_WORKER_H

#include "common/config.h"

/* Runs until SIGTERM/SIGINT; returns the exit status (common/exitcodes.h). cfg->nats_url is set. */
int ingest_worker_main(const config *cfg, int slot);

#endif
