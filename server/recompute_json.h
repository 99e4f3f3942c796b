/*
 * server/recompute_json.h: the RecomputeRun (API.md §5.3) and AuditEntry (§5.4) JSON objects,
 * written from PostgreSQL result rows in text format. Used by the HTTP workers' management
 * handlers (server/handlers/recomputations.c, audit_entries.c) as http_query row writers.
 *
 * The statements of the runs store (common/runs.h) select the columns listed by
 * RUNS_JSON_COLUMNS or RUNS_AUDIT_JSON_COLUMNS (in that order); the writers
 * read them by position starting at a given column. The session must be UTC (DATA.md §1):
 * timestamptz text is converted with pgtime_parse and written with jout_timestamp.
 */
#ifndef ANALYTICSD_RECOMPUTE_JSON_H
#define ANALYTICSD_RECOMPUTE_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "common/jbuf.h"

/*
 * Appends the RecomputeRun of row `row`, columns col..col+12 of res (RUNS_JSON_COLUMNS):
 * members in §5.3 order; started_at/finished_at omitted when NULL; error_message omitted when
 * NULL or empty; summary with its keys in byte order. Returns 0, or -1 (logged) when a value
 * cannot be rendered (a NULL in a NOT NULL column, unparseable timestamp, integer or summary);
 * then b holds a partial object the caller must discard.
 */
int recompute_json_run(jbuf *b, const PGresult *res, int row, int col);

/*
 * Appends the AuditEntry of row `row`, columns col..col+6 of res (RUNS_AUDIT_JSON_COLUMNS):
 * members in §5.4 order; resource_id omitted when NULL or empty; metadata with keys in byte
 * order. Returns 0 or -1 like recompute_json_run.
 */
int recompute_json_audit(jbuf *b, const PGresult *res, int row, int col);

#endif
