/*
 * common/resp.h: the Redis wire format (RESP) of one command, written without printf. Used by
 * redisconn on the HTTP workers' hot path (hiredis 0.14's redisFormatCommandArgv formats every
 * length with sprintf, which dominated the cost of a cached report read).
 */
#ifndef ANALYTICSD_RESP_H
#define ANALYTICSD_RESP_H

#include <stddef.h>

/* Bytes resp_format needs for this command. */
size_t resp_length(int argc, const char *const *argv, const size_t *argvlen);

/*
 * Writes "*<argc>\r\n" then "$<len>\r\n<arg>\r\n" for each argument into out, which must hold
 * resp_length(...) bytes. argvlen NULL means every argument is NUL-terminated. Returns the
 * number of bytes written.
 */
size_t resp_format(char *out, int argc, const char *const *argv, const size_t *argvlen);

#endif
