/*
 * common/rebuild.h: the snapshot rebuild of DATA.md §6.2–§6.4, the one piece of SQL shared by
 * the seed (seed/seed.c, in the seed process) and the recompute workers. It runs inside a
 * transaction the caller owns, so each caller decides what else commits with it.
 */
#ifndef ANALYTICSD_REBUILD_H
#define ANALYTICSD_REBUILD_H

#include <libpq-fe.h>
#include <stdint.h>

/* The counts of DATA.md §6.4 / §6.6. */
typedef struct rebuild_summary {
    int64_t bucket_count;  /* distinct bucket_start values in [lo, hi) after the insert */
    int64_t rows_deleted;  /* snapshot rows of (S, W) in [lo, hi) before the rebuild */
    int64_t rows_inserted; /* (bucket, dimension value) groups with events */
} rebuild_summary;

typedef enum {
    REBUILD_OK,          /* range rebuilt; *out filled */
    REBUILD_UNSUPPORTED, /* report slug not in the registry; nothing was sent */
    REBUILD_DB_ERROR     /* a statement failed (logged) or bad arguments; roll back */
} rebuild_status;

/*
 * Rebuilds the snapshots of report `report_slug`, window `window` (a registry window) for the
 * requested dates date_from..date_to ("YYYY-MM-DD", inclusive), widened to [lo, hi) as in
 * §6.3, tagging new rows with run_id (a UUID string, or NULL for no run).
 *
 * Must be called inside a transaction the caller opened with BEGIN; the caller COMMITs on
 * REBUILD_OK and ROLLBACKs otherwise. Steps: pg_advisory_xact_lock on
 * hashtextextended('recompute:' || S || ':' || W, 0) (waits for a concurrent rebuild of the same
 * pair, bounded only by the session's statement_timeout), delete of [lo, hi), one
 * INSERT … SELECT … GROUP BY. The session must be in UTC (DATA.md §1) for the range and buckets.
 *
 * Returns REBUILD_UNSUPPORTED for an unknown slug without sending anything (so the transaction
 * stays usable), REBUILD_DB_ERROR after logging the server's message (the transaction is then
 * aborted) or for a window that is not a report window of the registry, REBUILD_OK with *out
 * filled.
 */
rebuild_status rebuild_run(PGconn *conn, const char *run_id, const char *report_slug,
                           const char *window, const char *date_from, const char *date_to,
                           rebuild_summary *out);

/*
 * The run summary of §6.6 as compact JSON with keys in byte order:
 * {"bucket_count":b,"rows_deleted":d,"rows_inserted":i}. Returns a heap string the caller frees.
 */
char *rebuild_summary_json(const rebuild_summary *s);

#endif
