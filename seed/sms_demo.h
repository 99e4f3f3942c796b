/*
 * seed/sms_demo.h: the deterministic SMS demo data set of SMS.md §8. It owns the generation of
 * the demo messages (charges, delivery receipts, duplicates, invalid messages) and their passage
 * through the real ingestion code (common/sms_event.h validation, common/sms_store.h batches).
 * Runs in the `analyticsd seed` process and in the master at startup when APP_AUTO_SEED is true,
 * both through seed_run (seed/seed.h). The totals it produces are stated in README.md.
 */
#ifndef ANALYTICSD_SMS_DEMO_H
#define ANALYTICSD_SMS_DEMO_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Loads the SMS demo data set into the anlyt schema, in one transaction, as NATS messages of
 * billing.events and sms.dlr.inbound would be (transport "nats", batches of 500 messages):
 * 4 operators, 40 accounts, 20,000 charged messages submitted between 00:00 UTC 29 days ago and
 * 10 minutes ago, their receipts, duplicates and 20 invalid messages. Only the timestamps depend
 * on the clock; every count and amount is the same on any day, as long as
 * retention_days (SMS_HOURLY_RETENTION_DAYS, the too_old window) is at least 30.
 *
 * conn must be idle and outside a transaction; the caller serialises seeds (seed_run holds the
 * seed advisory lock). First makes sure the monthly partitions exist (its own short transaction).
 * With force, the transaction first empties every anlyt table and clears the ingestion
 * watermark. It then skips (returns 0, logged) when anlyt already holds SMS data: the watermark
 * anlyt.ingest_state.ingested_through is set (some event was ever accepted; it is never purged)
 * or metrics_hourly or metrics_daily has rows. So a second seed never counts twice, even after
 * the dedupe records were purged.
 *
 * Returns 0 on success or skip. On failure returns -1 after logging: the transaction is rolled
 * back, so nothing of the demo data (nor the force truncation) is left behind; partitions
 * created before it are kept (harmless, maintenance would create them too).
 */
int sms_demo_run(PGconn *conn, bool force, int64_t retention_days);

#endif
