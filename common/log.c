/*
 * common/log.c: line logger on standard output (see log.h). Used by every process.
 *
 * A whole line is formatted into one buffer and written with a single write(2), so lines from
 * the master and its children sharing stdout never interleave.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "analyticsd";
static int log_journal;

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_set_journal_prefix(int on)
{
    log_journal = on;
}

static const char *level_name(log_level level)
{
    switch (level) {
    case LOG_LEVEL_ERROR:
        return "error";
    case LOG_LEVEL_WARN:
        return "warn";
    case LOG_LEVEL_INFO:
        return "info";
    default:
        return "debug";
    }
}

void log_msg(log_level level, const char *fmt, ...)
{
    char line[2048];
    size_t n;

    if (log_journal) {
        n = (size_t)snprintf(line, sizeof(line), "<%d>%s %s[%d]: ", (int)level, level_name(level),
                             log_role, (int)getpid());
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
        n += (size_t)snprintf(line + n, sizeof(line) - n, ".%06ldZ %s %s[%d]: ", ts.tv_nsec / 1000,
                              level_name(level), log_role, (int)getpid());
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += (size_t)m;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t off = 0;
    while (off < (ssize_t)n) {
        ssize_t w = write(STDOUT_FILENO, line + off, n - (size_t)off);
        if (w <= 0)
            break;
        off += w;
    }
}
