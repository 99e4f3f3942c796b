/*
 * worker/stopsignal.h: how the blocking child processes (supervisor, recompute workers) learn
 * that the master asked them to stop. SIGTERM/SIGINT stay blocked (inherited from the master)
 * and are read from a signalfd between units of work.
 */
#ifndef ANALYTICSD_STOPSIGNAL_H
#define ANALYTICSD_STOPSIGNAL_H

/* Returns a non-blocking signalfd for SIGTERM and SIGINT, or -1 (errno set). */
int stopsignal_open(void);

/* Waits up to timeout_ms for a stop signal; returns 1 if one arrived (now or earlier), else 0. */
int stopsignal_wait(int fd, int timeout_ms);

#endif
