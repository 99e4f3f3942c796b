/*
 * common/log.c: line logger on standard output (see log.h). Used by every process.
 *
 * A whole line is rendered into one buffer and written with a single write(2), so lines from
 * the master and its children sharing stdout never interleave. JSON strings go through the
 * response encoder (json_out.h): quotes, backslashes, control characters and invalid UTF-8 are
 * escaped, so a message can never break its line or its object.
 */
#include "common/log.h"

#include "common/json_out.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "analyticsd";
static int log_journal;
static log_format log_fmt = LOG_FORMAT_TEXT;
static _Thread_local char log_rid[LOG_REQUEST_ID_MAX + 1];

void log_set_role(const char *role)
{
    snprintf(log_role, sizeof(log_role), "%s", role);
}

void log_set_journal_prefix(int on)
{
    log_journal = on;
}

void log_set_format(log_format format)
{
    log_fmt = format;
}

void log_set_request_id(const char *id)
{
    size_t n = id != NULL ? strnlen(id, LOG_REQUEST_ID_MAX) : 0;
    memcpy(log_rid, id != NULL ? id : "", n);
    log_rid[n] = '\0';
}

const char *log_request_id(void)
{
    return log_rid;
}

void log_push_request_id(const char *id, char saved[LOG_REQUEST_ID_MAX + 1])
{
    memcpy(saved, log_rid, sizeof(log_rid));
    log_set_request_id(id);
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

/* Text lines: bytes outside 0x21-0x7E of a client-chosen value are written as %XX, so the
 * value stays one token and cannot forge a line. */
static void text_token(jbuf *b, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x20 && c < 0x7f && c != '%')
            jbuf_putc(b, (char)c);
        else
            jbuf_printf(b, "%%%02X", c);
    }
}

static void render_text(jbuf *b, log_level level, int64_t now_ns, const char *msg, size_t msg_len,
                        const log_access_fields *a)
{
    if (log_journal) {
        jbuf_printf(b, "<%d>", (int)level);
    } else {
        char ts[32];
        struct tm tm;
        time_t sec = (time_t)(now_ns / 1000000000);
        gmtime_r(&sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        jbuf_printf(b, "%s.%06dZ ", ts, (int)(now_ns % 1000000000 / 1000));
    }
    jbuf_printf(b, "%s %s[%d]: ", level_name(level), log_role, (int)getpid());
    jbuf_append(b, msg, msg_len);
    if (a != NULL) {
        jbuf_puts(b, " method=");
        text_token(b, a->method, a->method_len);
        jbuf_puts(b, " path=");
        text_token(b, a->path, a->path_len);
        jbuf_printf(b, " status=%d bytes=%" PRIu64 " duration_ms=%.3f worker=%d", a->status,
                    a->bytes, a->duration_ms, a->worker);
    }
    if (log_rid[0] != '\0') {
        jbuf_puts(b, " request_id=");
        text_token(b, log_rid, strlen(log_rid));
    }
}

static void render_json(jbuf *b, log_level level, int64_t now_ns, const char *msg, size_t msg_len,
                        const log_access_fields *a)
{
    if (log_journal)
        jbuf_printf(b, "<%d>", (int)level);
    jbuf_puts(b, "{\"ts\":");
    jout_timestamp(b, now_ns / 1000000000, (int32_t)(now_ns % 1000000000));
    jbuf_printf(b, ",\"level\":\"%s\",\"pid\":%d,\"role\":", level_name(level), (int)getpid());
    jout_cstr(b, log_role);
    jbuf_puts(b, ",\"msg\":");
    jout_string(b, msg, msg_len);
    if (a != NULL) {
        jbuf_puts(b, ",\"method\":");
        jout_string(b, a->method, a->method_len);
        jbuf_puts(b, ",\"path\":");
        jout_string(b, a->path, a->path_len);
        jbuf_printf(b, ",\"status\":%d,\"bytes\":%" PRIu64 ",\"duration_ms\":%.3f,\"worker\":%d",
                    a->status, a->bytes, a->duration_ms, a->worker);
    }
    if (log_rid[0] != '\0') {
        jbuf_puts(b, ",\"request_id\":");
        jout_cstr(b, log_rid);
    }
    jbuf_putc(b, '}');
}

void log_render(jbuf *b, log_level level, int64_t now_ns, const char *msg, size_t msg_len,
                const log_access_fields *access)
{
    if (log_fmt == LOG_FORMAT_JSON)
        render_json(b, level, now_ns, msg, msg_len, access);
    else
        render_text(b, level, now_ns, msg, msg_len, access);
}

static void write_line(log_level level, const char *msg, size_t msg_len,
                       const log_access_fields *access)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    jbuf b;
    jbuf_init(&b);
    log_render(&b, level, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec, msg, msg_len, access);
    jbuf_putc(&b, '\n');
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(STDOUT_FILENO, b.data + off, b.len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    jbuf_free(&b);
}

void log_msg(log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t n = m < 0 ? 0 : (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1;
    write_line(level, msg, n, NULL);
}

void log_access(const log_access_fields *f)
{
    write_line(LOG_LEVEL_INFO, "access", 6, f);
}
