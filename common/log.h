/*
 * common/log.h: one-line log events on standard output (CONFIG.md §5.5), used by every process.
 *
 * Two formats (LOG_FORMAT, set once by `serve` before it forks):
 *  - text (default): "<iso8601 utc> <level> <role>[<pid>]: <message>", followed by
 *    " request_id=<id>" while the process works for a request (log_set_request_id);
 *  - json: one JSON object per line, {"ts","level","pid","role","msg"[,"request_id"]} (the
 *    access line adds its own members, log_access_fields), strings escaped like responses
 *    (API.md §1.4), so every line parses on its own.
 * Under systemd the journal adds its own timestamp; with log_set_journal_prefix(1) every line
 * (either format) starts with an sd-daemon "<N>" prefix, so journald sets the priority (text
 * lines then have no timestamp of their own; json lines keep "ts").
 *
 * The request id and the format are per process (the id per thread); nothing here allocates
 * for the caller. Never pass MANAGEMENT_API_KEY, connection passwords, Authorization or
 * X-Management-Key header values, or request bodies to these functions.
 */
#ifndef ANALYTICSD_LOG_H
#define ANALYTICSD_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "common/jbuf.h"

typedef enum {
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_WARN = 4,
    LOG_LEVEL_INFO = 6,
    LOG_LEVEL_DEBUG = 7
} log_level;

typedef enum { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON } log_format;

/* Longest request id kept (API.md §8: 1-128 characters); longer ones are cut. */
#define LOG_REQUEST_ID_MAX 128

/* Sets the role shown on every line ("master", "http", "recompute", "migrate", ...). Copied. */
void log_set_role(const char *role);

/* With on != 0, prefixes lines with "<N>" (sd-daemon priority) instead of a timestamp. */
void log_set_journal_prefix(int on);

/* Chooses the line format for this process and the children it forks afterwards. */
void log_set_format(log_format format);

/*
 * Sets the id of the request this thread works for, shown on every line until changed; NULL or
 * "" clears it. Copied (at most LOG_REQUEST_ID_MAX bytes).
 */
void log_set_request_id(const char *id);

/* The current request id, "" when there is none. Valid until the next log_set_request_id. */
const char *log_request_id(void);

/*
 * Copies the current request id into saved, then makes id current (NULL clears). Restore
 * with log_set_request_id(saved). For callbacks that run on behalf of a request.
 */
void log_push_request_id(const char *id, char saved[LOG_REQUEST_ID_MAX + 1]);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)

/* One access log line (ACCESS_LOG): what an HTTP worker answered. Strings are not copied. */
typedef struct log_access_fields {
    const char *method;
    size_t method_len;
    const char *path; /* without the query string */
    size_t path_len;
    int status;
    uint64_t bytes; /* body bytes sent */
    double duration_ms;
    int worker; /* HTTP worker number (its shared-state slot) */
} log_access_fields;

/* Writes an info line "access" with the fields (and the current request id). */
void log_access(const log_access_fields *f);

/*
 * Renders one line, without the trailing line feed, into b (appended): what log_msg and
 * log_access write. msg is msg_len bytes of any content; access may be NULL. now_ns is the
 * wall-clock time of the line. Exposed for the unit tests.
 */
void log_render(jbuf *b, log_level level, int64_t now_ns, const char *msg, size_t msg_len,
                const log_access_fields *access);

#endif
