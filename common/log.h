/*
 * common/log.h: one-line log events on standard output (CONFIG.md §5.5), used by every process.
 *
 * Each line: "<iso8601 utc> <level> <role>[<pid>]: <message>". Under systemd the journal adds
 * its own timestamp; the level is also given as an sd-daemon "<N>" prefix when
 * log_set_journal_prefix(1) was called, so journald sets the priority.
 * Never pass MANAGEMENT_API_KEY, connection passwords or request bodies to these functions.
 */
#ifndef ANALYTICSD_LOG_H
#define ANALYTICSD_LOG_H

typedef enum {
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_WARN = 4,
    LOG_LEVEL_INFO = 6,
    LOG_LEVEL_DEBUG = 7
} log_level;

/* Sets the role shown on every line ("master", "http", "recompute", "migrate", ...). Copied. */
void log_set_role(const char *role);

/* With on != 0, prefixes lines with "<N>" (sd-daemon priority) instead of a timestamp. */
void log_set_journal_prefix(int on);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)

#endif
