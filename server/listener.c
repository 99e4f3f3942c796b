/*
 * server/listener.c: creates the shared listening socket (see listener.h). Runs in the master.
 */
#include "server/listener.h"

#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTENER_BACKLOG 4096

static int try_bind(int family, const struct sockaddr *sa, socklen_t len, int *err)
{
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, sa, len) != 0 || listen(fd, LISTENER_BACKLOG) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

int listener_open(const char *host, int port)
{
    struct sockaddr_in6 sin6;
    struct sockaddr_in sin;
    memset(&sin6, 0, sizeof(sin6));
    memset(&sin, 0, sizeof(sin));
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons((uint16_t)port);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    int fd = -1, err = 0;

    if (host == NULL) {
        sin6.sin6_addr = in6addr_any;
        fd = try_bind(AF_INET6, (struct sockaddr *)&sin6, sizeof(sin6), &err);
        if (fd < 0 && (err == EAFNOSUPPORT || err == EADDRNOTAVAIL)) {
            sin.sin_addr.s_addr = htonl(INADDR_ANY);
            fd = try_bind(AF_INET, (struct sockaddr *)&sin, sizeof(sin), &err);
        }
    } else if (inet_pton(AF_INET, host, &sin.sin_addr) == 1) {
        fd = try_bind(AF_INET, (struct sockaddr *)&sin, sizeof(sin), &err);
    } else if (inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1) {
        fd = try_bind(AF_INET6, (struct sockaddr *)&sin6, sizeof(sin6), &err);
    } else {
        err = EINVAL;
    }
    if (fd < 0)
        log_error("cannot listen on %s port %d: %s", host ? host : "all interfaces", port,
                  strerror(err));
    return fd;
}
