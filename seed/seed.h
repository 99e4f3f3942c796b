/*
 * seed/seed.h: the deterministic demo seed of DATA.md §5. Run by `analyticsd seed` and by the
 * master at startup when APP_AUTO_SEED is true (never forced there).
 */
#ifndef ANALYTICSD_SEED_H
#define ANALYTICSD_SEED_H

#include <libpq-fe.h>
#include <stdbool.h>

/*
 * Seeds in one transaction under the seed advisory lock. With force, truncates the demo tables
 * first. Skips (returning 0) when events already exist. Returns 0 on success or skip, -1 after
 * logging a failure (the transaction leaves nothing behind).
 */
int seed_run(PGconn *conn, bool force);

#endif
