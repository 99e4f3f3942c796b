/*
 * server/listener.h: the one listening socket of the service, created by the master before any
 * fork and inherited by every HTTP worker (they all accept from the same queue, so a crashed
 * worker's queued connections are taken by the survivors).
 */
#ifndef ANALYTICSD_LISTENER_H
#define ANALYTICSD_LISTENER_H

/*
 * Binds host:port (host NULL = all interfaces: IPv6 dual-stack "::" when available, else
 * 0.0.0.0) and listens. Returns the descriptor (non-blocking, close-on-exec), or -1 after
 * logging why (port in use, permission, bad address).
 */
int listener_open(const char *host, int port);

#endif
