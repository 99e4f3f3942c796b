/*
 * server/notify.h: the service manager protocol (sd_notify) behind one small wrapper. Only the
 * master calls these; children unset NOTIFY_SOCKET after fork so they cannot notify.
 * Every function is a no-op when the process does not run under a notify-capable manager.
 */
#ifndef ANALYTICSD_NOTIFY_H
#define ANALYTICSD_NOTIFY_H

#include <stdint.h>

void notify_ready(void);
void notify_reloading(void); /* RELOADING=1 with MONOTONIC_USEC= */
void notify_stopping(void);
void notify_status(const char *status);
void notify_watchdog(void);

/* Watchdog period in microseconds if the manager asked for pings (WATCHDOG_USEC), else 0. */
uint64_t notify_watchdog_usec(void);

#endif
