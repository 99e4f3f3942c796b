/*
 * common/redisconn.h: one non-blocking Redis connection on a libh2o 2.2.5 evloop (hiredis 0.14
 * async API plus our own h2o adapter). Used by HTTP workers and by the master's helpers; each
 * process, and each loop, has its own connections.
 *
 * Rules it enforces (DATA.md §7, CONFIG.md §3.7):
 *   - The connection is opened lazily by the first command. AUTH (when the endpoint has a
 *     password) and SELECT (when db != 0) are pipelined ahead of it; an error reply to either
 *     counts as a connection failure, so a misconfigured Redis is never treated as usable.
 *   - Every command has a deadline of REDISCONN_TIMEOUT_MS from the moment it is issued, which
 *     also covers the connect. On expiry the connection is torn down.
 *   - Any connection failure, timeout, or loss of an established connection (even an idle
 *     one) tears the connection down: on_failure is called once, then every command that was in
 *     flight or waiting for that connection gets the failure's cause (REDISCONN_UNAVAILABLE or
 *     REDISCONN_TIMEOUT). The next command opens a new connection. At most one connect attempt
 *     is in flight; commands issued while it is under way (or while a failure report is
 *     pending) share its fate.
 *   - A Redis *error reply* (e.g. WRONGTYPE) is not a connection failure: it is delivered as
 *     REDISCONN_ERROR_REPLY with the reply, on_failure is not called and the connection stays
 *     up.
 *
 * Callbacks are never called from inside redisconn_command_argv(): failures are reported from
 * a 1 ms loop timer (next loop iteration), replies from the socket's read event.
 *
 * Host names: IP literals are used as is, "localhost" means 127.0.0.1; any other name is
 * resolved once (blocking getaddrinfo) in redisconn_create. If that fails, hiredis resolves
 * the name on every connect attempt (blocking the loop while it does).
 *
 * Not supported: TLS (rediss://; hiredis 0.14 has no TLS), SUBSCRIBE/MONITOR (their replies
 * do not pair one-to-one with commands).
 *
 * The process must ignore SIGPIPE: hiredis writes with write(2).
 */
#ifndef ANALYTICSD_REDISCONN_H
#define ANALYTICSD_REDISCONN_H

#include "common/config.h"

#include <stddef.h>

#include <h2o/socket.h>
#include <hiredis/hiredis.h>

/* The limit on every Redis interaction (DATA.md §7). */
#define REDISCONN_TIMEOUT_MS 1000

typedef struct redisconn redisconn;
typedef struct redisconn_cmd redisconn_cmd;

/*
 * Why a command's callback was called.
 *  REDISCONN_OK           the server's reply (any type but a top-level error; an error nested
 *                         in an array reply stays inside it).
 *  REDISCONN_ERROR_REPLY  the server answered with an error reply (reply->str, e.g. WRONGTYPE,
 *                         NOAUTH); the connection stays up and Redis is reachable.
 *  REDISCONN_UNAVAILABLE  no connection could be made (refused, unreachable, AUTH or SELECT
 *                         refused) or it was lost; whether the command ran is unknown.
 *  REDISCONN_TIMEOUT      no reply (or no connection) within REDISCONN_TIMEOUT_MS of a command
 *                         of the connection; whether the command ran is unknown.
 */
typedef enum {
    REDISCONN_OK,
    REDISCONN_ERROR_REPLY,
    REDISCONN_UNAVAILABLE,
    REDISCONN_TIMEOUT,
} redisconn_status;

/*
 * Command completion. With REDISCONN_OK or REDISCONN_ERROR_REPLY, reply is the server's reply,
 * borrowed for the duration of the callback (hiredis frees it afterwards); otherwise reply is
 * NULL. Once the callback has started, the command handle is gone: do not cancel it.
 */
typedef void (*redisconn_cb)(void *data, redisconn_status st, redisReply *reply);

/*
 * Creates an idle connection object for endpoint ep on loop; nothing is connected yet. The
 * endpoint's strings are copied. on_failure(data) (may be NULL) is called once per connection
 * failure, timeout or loss, before the affected commands' callbacks.
 * Returns NULL, logging the reason once per process, when ep->tls is set (unsupported).
 */
redisconn *redisconn_create(h2o_loop_t *loop, const config_redis *ep,
                            void (*on_failure)(void *data), void *data);

/*
 * Queues one command given as binary-safe arguments (argvlen[i] bytes of argv[i]; the
 * arguments are copied before returning). cb (may be NULL: reply discarded) is called exactly
 * once, later, unless the command is cancelled or the connection destroyed first.
 * Returns the command handle; NULL only when argc < 1 (then cb is never called).
 */
redisconn_cmd *redisconn_command_argv(redisconn *c, int argc, const char **argv,
                                      const size_t *argvlen, redisconn_cb cb, void *data);

/*
 * Makes sure cmd's callback is never called. The command itself stays in flight: its reply is
 * discarded when it arrives, and its deadline still applies (a server that never answers is
 * still detected and reported). Safe from any callback, including for another command of the
 * same connection. NULL is ignored. Must not be called once cmd's callback has started.
 */
void redisconn_cancel(redisconn_cmd *cmd);

/*
 * Closes the connection and frees everything. Pending commands are dropped without calling
 * their callbacks and on_failure is not called. Must not be called from inside one of this
 * connection's callbacks (command callbacks or on_failure). NULL is ignored.
 */
void redisconn_destroy(redisconn *c);

/* Whether c has an established connection now (metrics); 0 for NULL. */
int redisconn_is_connected(const redisconn *c);

#endif
