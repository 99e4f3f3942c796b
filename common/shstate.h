/*
 * common/shstate.h: process-shared state that is not the job ring: one slot per child process
 * (readiness, heartbeat; recompute job deadline; HTTP open connections) and the Redis
 * trusted/untrusted flag of DATA.md §7.6.
 *
 * Slot layout: [0] supervisor, [1..64] recompute workers, [SHSTATE_FIRST_HTTP_SLOT,
 * SHSTATE_END_HTTP_SLOT) HTTP workers (two generations during a reload), then the ingest workers
 * (the master assigns them; server/master.c).
 *
 * An anonymous MAP_SHARED mapping made by the master before the first fork, so every child,
 * including respawned ones, sees the same memory and nothing has a name that could leak.
 * Fields are single aligned atomics; no locks, so a child killed at any instruction cannot
 * leave anything inconsistent. The master only reads children's fields and resets a slot
 * before (re)starting a child in it.
 */
#ifndef ANALYTICSD_SHSTATE_H
#define ANALYTICSD_SHSTATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define SHSTATE_FIRST_HTTP_SLOT   65
#define SHSTATE_END_HTTP_SLOT     640
#define SHSTATE_FIRST_INGEST_SLOT SHSTATE_END_HTTP_SLOT
#define SHSTATE_MAX_SLOTS         (SHSTATE_FIRST_INGEST_SLOT + 64)

typedef struct shstate_slot {
    _Atomic int32_t pid;            /* child pid, 0 when empty */
    _Atomic int32_t ready;          /* set by the child once it serves */
    _Atomic int64_t heartbeat_ns;   /* CLOCK_MONOTONIC, refreshed by the child's loop */
    _Atomic int64_t busy_until_ns;  /* recompute: job deadline while busy, 0 when idle */
    _Atomic int32_t connections;    /* HTTP: open client connections */
    _Atomic int32_t nats_connected; /* ingest: 1 while its NATS connection is up */
} shstate_slot;

typedef struct shstate {
    _Atomic int32_t redis_trusted;   /* 0 = untrusted (the start state), 1 = trusted */
    _Atomic int32_t startup_done;    /* supervisor: first recovery bump and orphan scan done */
    _Atomic uint64_t redis_failures; /* how often any process marked Redis untrusted */
    _Atomic uint64_t worker_exits;   /* recompute worker exits seen by the master (orphan scans) */
    shstate_slot slots[SHSTATE_MAX_SLOTS];
} shstate;

/* Maps a zeroed shared state (aborts if the kernel refuses: nothing can run without it). */
shstate *shstate_create(void);

/* The mapping inherited by this process (set by shstate_create before fork). */
extern shstate *shstate_global;

/*
 * The fewest open connections held by a ready HTTP worker other than the one in slot `self`,
 * or -1 when no other HTTP worker is ready. Reads every HTTP slot (a few hundred atomic loads):
 * meant for accepting a connection, not for every request.
 */
int32_t shstate_fewest_http_connections(int self);

/* Whether any running ingest worker reports its NATS connection up (health, SMS.md §4). */
bool shstate_nats_connected(void);

/* Redis state helpers, callable from any process. Marking untrusted logs once per change. */
bool shstate_redis_trusted(void);
void shstate_redis_mark_untrusted(const char *why);
void shstate_redis_mark_trusted(void);

#endif
