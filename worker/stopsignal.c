/*
 * worker/stopsignal.c: stop-signal polling for the supervisor and recompute workers (see
 * stopsignal.h).
 */
#include "worker/stopsignal.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

static int stop_seen;

int stopsignal_open(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int stopsignal_wait(int fd, int timeout_ms)
{
    if (stop_seen)
        return 1;
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) > 0) {
        struct signalfd_siginfo si;
        while (read(fd, &si, sizeof(si)) == sizeof(si))
            stop_seen = 1;
    }
    return stop_seen;
}
