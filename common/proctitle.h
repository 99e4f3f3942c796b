/*
 * common/proctitle.h: process titles shown by ps ("analyticsd: http worker 2"), so operators
 * see each process's role. Used by the master and every child.
 */
#ifndef ANALYTICSD_PROCTITLE_H
#define ANALYTICSD_PROCTITLE_H

/*
 * Must run first in main(): takes over the memory holding argv and the environment strings
 * (the environment is copied to the heap, so getenv keeps working). argv[] itself must not be
 * used after a later proctitle_set.
 */
void proctitle_init(int argc, char **argv);

/* Sets the title (truncated to the space argv had) and the kernel's short comm name. */
void proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
