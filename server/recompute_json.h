/*
 * server/recompute_json.h: the RecomputeRun (API.md §5.3) and AuditEntry (§5.4) JSON objects,
 * written from PostgreSQL result rows in text format. Used by the HTTP workers' management
 * handlers (server/handlers/recomputations.c, audit_entries.c) as http_query row writers.
 *
 * The SQL of those handlers selects the columns listed by RECOMPUTE_JSON_RUN_COLUMNS or
 * RECOMPUTE_JSON_AUDIT_COLUMNS (in that order, from tables aliased `r` and `a`); the writers
 * read them by position starting at a given column. The session must be UTC (DATA.md §1):
 * timestamptz text is converted with pgtime_parse and written with jout_timestamp.
 */
#ifndef ANALYTICSD_RECOMPUTE_JSON_H
#define ANALYTICSD_RECOMPUTE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/jbuf.h"

#define RECOMPUTE_JSON_RUN_COLUMNS                                                                 \
    "r.id::text, r.report_slug, r.window_name, r.date_from::text, r.date_to::text, "               \
    "r.requested_by, r.status, r.attempts, r.requested_at, r.started_at, r.finished_at, "          \
    "r.error_message, r.summary::text"
#define RECOMPUTE_JSON_RUN_NCOLS 13

#define RECOMPUTE_JSON_AUDIT_COLUMNS                                                               \
    "a.id, a.actor, a.action, a.resource_type, a.resource_id, a.metadata::text, a.created_at"
#define RECOMPUTE_JSON_AUDIT_NCOLS 7

/*
 * Appends the RecomputeRun of row `row`, columns col..col+12 of res (RECOMPUTE_JSON_RUN_COLUMNS):
 * members in §5.3 order; started_at/finished_at omitted when NULL; error_message omitted when
 * NULL or empty; summary with its keys in byte order. Returns 0, or -1 (logged) when a value
 * cannot be rendered (a NULL in a NOT NULL column, unparseable timestamp, integer or summary);
 * then b holds a partial object the caller must discard.
 */
int recompute_json_run(jbuf *b, const PGresult *res, int row, int col);

/*
 * Appends the AuditEntry of row `row`, columns col..col+6 of res (RECOMPUTE_JSON_AUDIT_COLUMNS):
 * members in §5.4 order; resource_id omitted when NULL or empty; metadata with keys in byte
 * order. Returns 0 or -1 like recompute_json_run.
 */
int recompute_json_audit(jbuf *b, const PGresult *res, int row, int col);

#endif
