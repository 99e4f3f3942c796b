/*
 * common/exitcodes.h: the exit-status contract between the master and its children, and of
 * the master itself (PostgreSQL-style: the supervisor decides from the status alone).
 *
 *   child exit 0      stopped because it was asked to (SIGTERM, retired generation): not a crash
 *   child exit 78     fatal configuration/environment problem: respawning cannot help; the
 *                     master stops the whole service and exits 1
 *   anything else     (another code, or death by a signal) a crash: the master respawns the
 *                     slot, immediately the first time, then with exponential back-off
 *
 *   master exit 0     stopped on request and every child finished within the grace period
 *   master exit 1     startup failure, crash loop, or work cut off at the shutdown deadline
 */
#ifndef ANALYTICSD_EXITCODES_H
#define ANALYTICSD_EXITCODES_H

#define EXIT_CHILD_STOPPED      0
#define EXIT_CHILD_CRASHED      1
#define EXIT_CHILD_FATAL_CONFIG 78

#endif
