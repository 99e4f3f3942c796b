/*
 * server/request_id.h: the X-Request-Id of API.md §8. Runs in HTTP workers (the checks are pure
 * code, also used by the unit tests).
 *
 * A request's own X-Request-Id (its first such header) is kept when it is 1-128 bytes, each
 * 0x21-0x7E: printable ASCII without the space. Leading and trailing spaces never reach us (the
 * HTTP parser trims header values), and an inner space is refused so that the id stays one
 * token in text log lines (`request_id=<id>`). Anything else (empty, too long, a space, a
 * control character or a non-ASCII byte) is replaced by a generated id.
 *
 * Generated ids are 32 lower-case hex digits (128 bits) from a per-process xoshiro256**
 * generator seeded from OpenSSL's RAND_bytes once after fork: unique in practice, cheap (no
 * system call per request), not secret.
 */
#ifndef ANALYTICSD_REQUEST_ID_H
#define ANALYTICSD_REQUEST_ID_H

#include <stdbool.h>
#include <stddef.h>

#define REQUEST_ID_MAX           128
#define REQUEST_ID_GENERATED_LEN 32

/* True when s[0..len) may be echoed as the request id (see above). */
bool request_id_valid(const char *s, size_t len);

/* (Re)seeds this process's generator; call once in every worker after fork. Never fails: if
 * RAND_bytes does, the clock and the pid are used (and that is logged). */
void request_id_seed(void);

/* Writes a fresh id of REQUEST_ID_GENERATED_LEN hex digits and a NUL into out. Seeds the
 * generator first if request_id_seed was never called. */
void request_id_generate(char out[REQUEST_ID_GENERATED_LEN + 1]);

#endif
