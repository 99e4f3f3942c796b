/*
 * seed/seed.h: the deterministic demo seed of DATA.md §5, followed by the SMS demo data of
 * SMS.md §8 (seed/sms_demo.h). Run by `analyticsd seed` and by the master at startup when
 * APP_AUTO_SEED is true (never forced there).
 */
#ifndef ANALYTICSD_SEED_H
#define ANALYTICSD_SEED_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Under the seed advisory lock: first the report demo in one transaction (with force, truncates
 * the demo tables first; skipped when events already exist), then, if that succeeded or was
 * skipped, the SMS demo data in a second transaction (sms_demo_run: with force, empties the
 * anlyt tables first; skipped when anlyt already holds SMS data). sms_retention_days is
 * SMS_HOURLY_RETENTION_DAYS (the too_old window of the SMS events).
 *
 * Returns 0 when both parts succeeded or were skipped, -1 after logging a failure. A failed part
 * leaves nothing of itself behind; when only the SMS part failed, the report demo stays committed
 * and the next seed loads the SMS part alone.
 */
int seed_run(PGconn *conn, bool force, int64_t sms_retention_days);

#endif
