/*
 * server/master.c: the master process of `analyticsd serve` (CONFIG.md §5). Runs in the process
 * the operator or systemd started; it stays single-threaded and does no HTTP or database work
 * after startup.
 *
 * It owns the listening socket, the shared state and the job ring, the table of child slots,
 * signals (a signalfd) and a 100 ms timerfd tick, and the service manager protocol. Children:
 *   - one supervisor (worker/supervisor.c): orphan scans, dispatch refill, Redis recovery bump;
 *   - RECOMPUTE_WORKERS recompute workers (worker/recompute_worker.c);
 *   - INGEST_WORKERS ingest workers (worker/ingest_worker.c) when NATS_URL is set;
 *   - HTTP_WORKERS HTTP workers (server/http_worker.c), in generations: SIGHUP starts a new
 *     generation and drains the old one once the new one serves.
 * Exit statuses are classified per common/exitcodes.h; crashed slots are respawned at once the
 * first time, then with exponential back-off; a crash loop stops the service.
 */
#include "server/master.h"

#include "common/log.h"
#include "common/metrics.h"
#include "common/migrate.h"
#include "common/pgsession.h"
#include "common/proctitle.h"
#include "common/ring.h"
#include "common/shstate.h"
#include "common/util.h"
#include "seed/seed.h"
#include "common/exitcodes.h"
#include "server/http_worker.h"
#include "server/listener.h"
#include "server/metrics_http.h"
#include "server/notify.h"
#include "worker/ingest_worker.h"
#include "worker/recompute_worker.h"
#include "worker/supervisor.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <poll.h>
#include <unistd.h>

#define MASTER_TICK_MS         100
#define MASTER_BACKOFF_MIN_NS  100000000LL   /* first delayed respawn */
#define MASTER_BACKOFF_MAX_NS  5000000000LL  /* delays double up to this */
#define MASTER_BURST_WINDOW_NS 10000000000LL /* a slot dying this often ... */
#define MASTER_BURST_DEATHS    5             /* ... (deaths within the window) backs off too */
#define MASTER_CRASH_LOOP_NS   60000000000LL /* no HTTP worker serving for 60 s */
#define MASTER_HTTP_STALL_NS   15000000000LL /* event loop heartbeat older than this: kill */
#define MASTER_IDLE_STALL_NS   30000000000LL /* recompute/supervisor heartbeat limit when idle */
#define MASTER_JOB_GRACE_NS    30000000000LL /* kill 30 s after a job's deadline (DATA.md §6.9) */
#define MASTER_RELOAD_WAIT_NS  10000000000LL /* a new generation has this long to become ready */
#define MASTER_STARTUP_WAIT_NS 2000000000LL  /* supervisor's first bump/orphan scan */

typedef enum { ROLE_SUPERVISOR, ROLE_RECOMPUTE, ROLE_HTTP, ROLE_INGEST } child_role;
_Static_assert((int)ROLE_RECOMPUTE == METRICS_KIND_RECOMPUTE &&
                   (int)ROLE_HTTP == METRICS_KIND_HTTP && (int)ROLE_INGEST == METRICS_KIND_INGEST,
               "roles double as metrics kinds");

typedef struct child_slot {
    bool in_use; /* part of the current or a draining generation */
    child_role role;
    int index;           /* 1-based number shown in the process title */
    unsigned generation; /* HTTP only */
    bool retiring;       /* drained on purpose: do not respawn */
    pid_t pid;           /* 0 when not running */
    int64_t started_ns;
    int64_t respawn_at_ns;  /* 0 = not waiting */
    int failed_starts;      /* consecutive children that died before becoming ready */
    int64_t burst_start_ns; /* start of the current window of deaths */
    int burst_deaths;       /* deaths since burst_start_ns */
    bool killed_hung;       /* the master SIGKILLed it for a missed heartbeat or deadline */
} child_slot;

typedef enum { MASTER_STARTING, MASTER_RUNNING, MASTER_RELOADING, MASTER_STOPPING } master_state;

typedef struct master {
    config *cfg; /* the configuration new HTTP workers get (replaced on reload) */
    const char *config_path;
    pid_t pid;
    int listen_fd;
    int signal_fd;
    int timer_fd;
    ring_t *ring;
    char ring_name[64];
    shstate *shared;
    child_slot slots[SHSTATE_MAX_SLOTS];
    unsigned generation;
    master_state state;
    int64_t reload_started_ns;
    int64_t stop_deadline_ns;
    bool stop_unclean;
    bool fatal;
    bool announced_ready;
    int64_t http_down_since_ns;
    int64_t last_watchdog_ns;
    char last_status[128];
    config *cfg_original; /* owned by main(); reloaded configs are owned by the master */
} master;

/* Slot layout: [0] supervisor, [1..64] recompute workers, [65..640) HTTP workers, [640..704)
 * ingest workers (common/shstate.h). */
#define SLOT_SUPERVISOR      0
#define SLOT_RECOMPUTE_FIRST 1
#define SLOT_HTTP_FIRST      SHSTATE_FIRST_HTTP_SLOT
#define SLOT_HTTP_END        SHSTATE_END_HTTP_SLOT
#define SLOT_INGEST_FIRST    SHSTATE_FIRST_INGEST_SLOT

static const char *role_name(child_role r)
{
    return r == ROLE_HTTP        ? "http worker"
           : r == ROLE_RECOMPUTE ? "recompute worker"
           : r == ROLE_INGEST    ? "ingest worker"
                                 : "supervisor";
}

/* ---- children ---------------------------------------------------------------------------- */

/*
 * Runs in the child right after fork: notice a dead master, restore signal defaults, drop the
 * master's descriptors and the notify socket, name the process. Never returns on failure.
 */
static void child_after_fork(master *m, child_slot *s, int slot_no)
{
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != m->pid)
        _exit(EXIT_CHILD_STOPPED); /* the master died between fork and prctl */
    close(m->signal_fd);
    close(m->timer_fd);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    signal(SIGCHLD, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    /* SIGTERM/SIGINT stay blocked: each role reads them from its own signalfd. */
    if (s->role != ROLE_HTTP)
        close(m->listen_fd);
    if (s->role != ROLE_HTTP && metrics_http_listen_fd >= 0)
        close(metrics_http_listen_fd);
    if (s->role == ROLE_SUPERVISOR)
        proctitle_set("analyticsd: supervisor");
    else
        proctitle_set("analyticsd: %s %d", role_name(s->role), s->index);
    log_set_role(s->role == ROLE_HTTP        ? "http"
                 : s->role == ROLE_RECOMPUTE ? "recompute"
                 : s->role == ROLE_INGEST    ? "ingest"
                                             : "supervisor");
    metrics_attach(slot_no);
}

static void spawn(master *m, int slot_no)
{
    child_slot *s = &m->slots[slot_no];
    shstate_slot *sh = &m->shared->slots[slot_no];
    atomic_store(&sh->pid, 0);
    atomic_store(&sh->ready, 0);
    atomic_store(&sh->busy_until_ns, 0);
    atomic_store(&sh->connections, 0);
    atomic_store(&sh->nats_connected, 0);
    atomic_store(&sh->heartbeat_ns, clock_monotonic_ns());
    if (s->role == ROLE_RECOMPUTE)
        ring_worker_reincarnate(m->ring, (uint32_t)(slot_no - SLOT_RECOMPUTE_FIRST));

    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork failed for %s %d: %s", role_name(s->role), s->index, strerror(errno));
        s->respawn_at_ns = clock_monotonic_ns() + MASTER_BACKOFF_MIN_NS;
        return;
    }
    if (pid == 0) {
        child_after_fork(m, s, slot_no);
        int rc;
        if (s->role == ROLE_HTTP)
            rc = http_worker_main(m->cfg, m->ring, m->listen_fd, slot_no, s->index);
        else if (s->role == ROLE_RECOMPUTE)
            rc = recompute_worker_main(m->cfg, m->ring, (uint32_t)(slot_no - SLOT_RECOMPUTE_FIRST),
                                       slot_no);
        else if (s->role == ROLE_INGEST)
            rc = ingest_worker_main(m->cfg, slot_no);
        else
            rc = supervisor_main(m->cfg, m->ring, slot_no);
        fflush(NULL);
        _exit(rc);
    }
    s->pid = pid;
    s->killed_hung = false;
    s->started_ns = clock_monotonic_ns();
    s->respawn_at_ns = 0;
    atomic_store(&sh->pid, pid);
}

static void add_slot(master *m, int slot_no, child_role role, int index)
{
    child_slot *s = &m->slots[slot_no];
    memset(s, 0, sizeof(*s));
    s->in_use = true;
    s->role = role;
    s->index = index;
    s->generation = m->generation;
    spawn(m, slot_no);
}

/* Starts a generation of HTTP workers in free HTTP slots. */
static void start_http_generation(master *m)
{
    m->generation++;
    int index = 1;
    for (int i = SLOT_HTTP_FIRST; i < SLOT_HTTP_END && index <= m->cfg->http_workers; i++) {
        if (!m->slots[i].in_use)
            add_slot(m, i, ROLE_HTTP, index++);
    }
    if (index <= m->cfg->http_workers)
        log_error("no free slot for %d http workers", m->cfg->http_workers - index + 1);
}

static int count(master *m, child_role role, bool ready_only, bool current_gen_only)
{
    int n = 0;
    for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
        child_slot *s = &m->slots[i];
        if (!s->in_use || s->role != role || s->pid == 0)
            continue;
        if (current_gen_only &&
            (s->retiring || (role == ROLE_HTTP && s->generation != m->generation)))
            continue;
        if (ready_only && !atomic_load(&m->shared->slots[i].ready))
            continue;
        n++;
    }
    return n;
}

static void signal_children(master *m, int sig, bool http_old_generation_only)
{
    for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
        child_slot *s = &m->slots[i];
        if (!s->in_use || s->pid == 0)
            continue;
        if (http_old_generation_only && (s->role != ROLE_HTTP || s->generation == m->generation))
            continue;
        kill(s->pid, sig);
    }
}

/* ---- reaping ----------------------------------------------------------------------------- */

static void on_child_exit(master *m, int slot_no, int status)
{
    child_slot *s = &m->slots[slot_no];
    int64_t now = clock_monotonic_ns();
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CHILD_STOPPED;
    bool was_ready = atomic_load(&m->shared->slots[slot_no].ready) != 0;
    pid_t pid = s->pid;
    s->pid = 0;
    atomic_store(&m->shared->slots[slot_no].pid, 0);
    atomic_store(&m->shared->slots[slot_no].ready, 0);
    metrics_retire(slot_no); /* its counters stay in the sums */
    if (s->role == ROLE_RECOMPUTE) {
        ring_worker_reincarnate(m->ring, (uint32_t)(slot_no - SLOT_RECOMPUTE_FIRST));
        atomic_fetch_add(&m->shared->worker_exits, 1); /* the supervisor scans for orphans */
    }

    if (WIFSIGNALED(status))
        log_warn("%s %d (pid %d) killed by signal %d%s", role_name(s->role), s->index, (int)pid,
                 WTERMSIG(status), WCOREDUMP(status) ? " (core dumped)" : "");
    else if (!clean)
        log_warn("%s %d exited with status %d", role_name(s->role), s->index, WEXITSTATUS(status));

    if (m->state == MASTER_STOPPING) {
        if (!clean)
            m->stop_unclean = true;
        s->in_use = false;
        return;
    }
    if (s->retiring) {
        s->in_use = false;
        return;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CHILD_FATAL_CONFIG) {
        log_error("%s %d reported a fatal configuration error; stopping the service",
                  role_name(s->role), s->index);
        m->fatal = true;
        s->in_use = false;
        return;
    }
    /*
     * Crash (or an unrequested clean exit). A child that was serving is replaced at once: a
     * killed worker must not cost the service capacity. Back off only when respawning cannot
     * help yet: children that die before becoming ready (a startup failure), or a slot dying
     * more than MASTER_BURST_DEATHS times within MASTER_BURST_WINDOW_NS.
     */
    if (now - s->burst_start_ns > MASTER_BURST_WINDOW_NS) {
        s->burst_start_ns = now;
        s->burst_deaths = 0;
    }
    s->burst_deaths++;
    metrics_count_restart((metrics_kind)s->role, s->killed_hung        ? METRICS_CAUSE_HUNG
                                                 : WIFSIGNALED(status) ? METRICS_CAUSE_KILLED
                                                                       : METRICS_CAUSE_EXITED);
    s->failed_starts = was_ready ? 0 : s->failed_starts + 1;
    int strikes = s->failed_starts - 1; /* the first failed start is retried at once */
    if (s->burst_deaths - MASTER_BURST_DEATHS > strikes)
        strikes = s->burst_deaths - MASTER_BURST_DEATHS;
    if (strikes <= 0) {
        spawn(m, slot_no);
        return;
    }
    int64_t delay = MASTER_BACKOFF_MIN_NS;
    for (int i = 1; i < strikes && delay < MASTER_BACKOFF_MAX_NS; i++)
        delay *= 2;
    if (delay > MASTER_BACKOFF_MAX_NS)
        delay = MASTER_BACKOFF_MAX_NS;
    s->respawn_at_ns = now + delay;
    log_warn("%s %d %s; respawning in %lld ms", role_name(s->role), s->index,
             s->failed_starts > 0 ? "keeps dying before it is ready" : "keeps dying",
             (long long)(delay / 1000000));
}

static void reap(master *m)
{
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid == 0)
            return;
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            return; /* ECHILD */
        }
        for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
            if (m->slots[i].in_use && m->slots[i].pid == pid) {
                on_child_exit(m, i, status);
                break;
            }
        }
    }
}

/* ---- periodic work ----------------------------------------------------------------------- */

static void check_heartbeats(master *m, int64_t now)
{
    for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
        child_slot *s = &m->slots[i];
        if (!s->in_use || s->pid == 0 || s->retiring)
            continue;
        shstate_slot *sh = &m->shared->slots[i];
        int64_t beat = atomic_load(&sh->heartbeat_ns);
        int64_t busy_until = atomic_load(&sh->busy_until_ns);
        bool hung;
        if (busy_until != 0)
            hung = now > busy_until + MASTER_JOB_GRACE_NS;
        else
            hung =
                now - beat > (s->role == ROLE_HTTP ? MASTER_HTTP_STALL_NS : MASTER_IDLE_STALL_NS);
        if (hung) {
            log_error("%s %d (pid %d) stopped responding; killing it", role_name(s->role), s->index,
                      (int)s->pid);
            kill(s->pid, SIGKILL);
            s->killed_hung = true;
        }
    }
}

static void respawn_due(master *m, int64_t now)
{
    for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
        child_slot *s = &m->slots[i];
        if (s->in_use && s->pid == 0 && s->respawn_at_ns != 0 && now >= s->respawn_at_ns)
            spawn(m, i);
    }
}

/* Milliseconds until the earliest delayed respawn (rounded up), or -1 when none waits. */
static int respawn_wait_ms(master *m)
{
    int64_t next = INT64_MAX;
    for (int i = 0; i < SHSTATE_MAX_SLOTS; i++) {
        child_slot *s = &m->slots[i];
        if (s->in_use && s->pid == 0 && s->respawn_at_ns != 0 && s->respawn_at_ns < next)
            next = s->respawn_at_ns;
    }
    if (next == INT64_MAX || m->state == MASTER_STOPPING)
        return -1;
    int64_t wait = next - clock_monotonic_ns();
    return wait <= 0 ? 0 : (int)((wait + 999999) / 1000000);
}

/* INGEST_WORKERS, or 0 when NATS ingestion is off. */
static int ingest_workers(const config *cfg)
{
    return cfg->nats_url != NULL ? cfg->ingest_workers : 0;
}

static void update_status(master *m)
{
    char status[128];
    snprintf(status, sizeof(status), "%d/%d http, %d/%d recompute, %d/%d ingest%s",
             count(m, ROLE_HTTP, true, true), m->cfg->http_workers,
             count(m, ROLE_RECOMPUTE, true, true), m->cfg->recompute_workers,
             count(m, ROLE_INGEST, true, true), ingest_workers(m->cfg),
             m->state == MASTER_RELOADING  ? ", reloading"
             : m->state == MASTER_STOPPING ? ", stopping"
                                           : "");
    if (strcmp(status, m->last_status) != 0) {
        snprintf(m->last_status, sizeof(m->last_status), "%s", status);
        notify_status(status);
    }
}

static void finish_reload(master *m)
{
    for (int i = SLOT_HTTP_FIRST; i < SLOT_HTTP_END; i++) {
        child_slot *s = &m->slots[i];
        if (s->in_use && s->role == ROLE_HTTP && s->generation != m->generation) {
            s->retiring = true;
            if (s->pid != 0)
                kill(s->pid, SIGTERM);
            else
                s->in_use = false;
        }
    }
    m->state = MASTER_RUNNING;
    log_info("reload complete: generation %u serving", m->generation);
    notify_ready();
}

static void tick(master *m)
{
    int64_t now = clock_monotonic_ns();
    if (m->state != MASTER_STOPPING) {
        respawn_due(m, now);
        check_heartbeats(m, now);
        int http_ready = count(m, ROLE_HTTP, true, false);
        if (http_ready > 0 && !m->announced_ready) {
            m->announced_ready = true;
            m->state = MASTER_RUNNING;
            log_info("serving on port %d with %d http, %d recompute and %d ingest workers",
                     m->cfg->app_port, m->cfg->http_workers, m->cfg->recompute_workers,
                     ingest_workers(m->cfg));
            notify_ready();
        }
        if (http_ready == 0) {
            if (m->http_down_since_ns == 0)
                m->http_down_since_ns = now;
            else if (now - m->http_down_since_ns > MASTER_CRASH_LOOP_NS) {
                log_error("crash loop: no http worker has served for 60 s; stopping");
                m->fatal = true;
            }
        } else {
            m->http_down_since_ns = 0;
        }
        if (m->state == MASTER_RELOADING &&
            (count(m, ROLE_HTTP, true, true) >= m->cfg->http_workers ||
             now - m->reload_started_ns > MASTER_RELOAD_WAIT_NS))
            finish_reload(m);
    } else if (now >= m->stop_deadline_ns) {
        if (count(m, ROLE_HTTP, false, false) + count(m, ROLE_RECOMPUTE, false, false) +
                count(m, ROLE_INGEST, false, false) + count(m, ROLE_SUPERVISOR, false, false) >
            0) {
            log_error("shutdown timeout reached; killing the remaining children");
            signal_children(m, SIGKILL, false);
            m->stop_unclean = true;
        }
        m->stop_deadline_ns = INT64_MAX;
    }
    uint64_t wd = notify_watchdog_usec();
    if (wd != 0 && now - m->last_watchdog_ns >= (int64_t)wd * 1000 / 2) {
        notify_watchdog();
        m->last_watchdog_ns = now;
    }
    update_status(m);
}

/* ---- signals ----------------------------------------------------------------------------- */

static void begin_stop(master *m, const char *why)
{
    if (m->state == MASTER_STOPPING)
        return;
    log_info("%s: stopping (grace period %lld ms)", why,
             (long long)(m->cfg->http_shutdown_timeout_ns / 1000000));
    notify_stopping();
    m->state = MASTER_STOPPING;
    m->stop_deadline_ns = clock_monotonic_ns() + m->cfg->http_shutdown_timeout_ns;
    close(m->listen_fd); /* children keep their copies until they drain */
    m->listen_fd = -1;
    if (metrics_http_listen_fd >= 0)
        close(metrics_http_listen_fd);
    metrics_http_listen_fd = -1;
    signal_children(m, SIGTERM, false);
}

/* config_keep_restart_only's note of a restart-only variable a reload tried to change. */
static void log_restart_only(const config_var *var, void *ctx)
{
    (void)ctx;
    log_warn("reload: %s changes take effect only after a restart", var->name);
}

/*
 * SIGHUP (server/README.md): re-read and validate the configuration. Invalid or unreadable: log
 * every error and keep serving. Valid: restart-only variables keep their running values and a
 * new HTTP generation starts with the rest. Never fails otherwise (OOM aborts).
 */
static void begin_reload(master *m)
{
    if (m->state != MASTER_RUNNING) {
        log_warn("SIGHUP ignored: %s",
                 m->state == MASTER_RELOADING ? "a reload is in progress" : "not serving yet");
        return;
    }
    notify_reloading();
    log_info("SIGHUP: reloading configuration%s%s", m->config_path ? " from " : "",
             m->config_path ? m->config_path : "");
    config_env_file *file = NULL;
    config_source src = config_source_environ();
    if (m->config_path != NULL) {
        const char *error = NULL;
        if (config_env_file_load(m->config_path, &file, &error) != 0) {
            log_error("reload rejected: %s: %s; the current workers keep serving", m->config_path,
                      error);
            notify_ready();
            return;
        }
        src = config_env_file_source(file);
    }
    config *next = xcalloc(1, sizeof(*next));
    char *errors = NULL;
    size_t errors_len = 0;
    FILE *err = open_memstream(&errors, &errors_len);
    int rc = config_load(next, CONFIG_ROLE_SERVER, src, err);
    fclose(err);
    config_env_file_free(file);
    if (rc != 0) {
        for (char *line = strtok(errors, "\n"); line != NULL; line = strtok(NULL, "\n"))
            log_error("reload rejected: %s", line);
        log_error("reload rejected; the current workers keep serving");
        free(errors);
        config_free(next);
        free(next);
        notify_ready();
        return;
    }
    free(errors);
    /* Restart-only variables (the table of common/config.c) keep their running values. */
    config_keep_restart_only(m->cfg, next, log_restart_only, NULL);
    /* Children hold their own copy-on-write copy, so the old struct can go now. */
    if (m->cfg != m->cfg_original) {
        config_free(m->cfg);
        free(m->cfg);
    }
    m->cfg = next;
    m->state = MASTER_RELOADING;
    m->reload_started_ns = clock_monotonic_ns();
    start_http_generation(m);
}

static void handle_signals(master *m)
{
    struct signalfd_siginfo si;
    while (read(m->signal_fd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            reap(m);
            break;
        case SIGTERM:
        case SIGINT: {
            char why[64];
            snprintf(why, sizeof(why), "%s from pid %u",
                     si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT", si.ssi_pid);
            begin_stop(m, why);
            break;
        }
        case SIGHUP:
            log_info("SIGHUP from pid %u", si.ssi_pid);
            begin_reload(m);
            break;
        default:
            break;
        }
    }
}

/* ---- startup ----------------------------------------------------------------------------- */

/* CONFIG.md §5.1 steps 2–3: migrations and seed, each on its own short-lived session. */
static int run_startup_database_work(config *cfg)
{
    if (cfg->auto_migrate) {
        PGconn *conn = pgsession_connect(cfg->database_url, "migrate");
        int rc = conn ? migrate_run(conn) : -1;
        PQfinish(conn);
        if (rc != 0) {
            log_error("startup migration failed");
            return -1;
        }
    }
    if (cfg->auto_seed) {
        PGconn *conn = pgsession_connect(cfg->database_url, "seed");
        int rc = conn ? seed_run(conn, false, cfg->sms_hourly_retention_days) : -1;
        PQfinish(conn);
        if (rc != 0) {
            log_error("startup seed failed");
            return -1;
        }
    }
    return 0;
}

static int setup_signals(master *m)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    signal(SIGPIPE, SIG_IGN);
    m->signal_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (m->signal_fd < 0 || m->timer_fd < 0)
        return -1;
    struct itimerspec its = {{0, MASTER_TICK_MS * 1000000L}, {0, MASTER_TICK_MS * 1000000L}};
    return timerfd_settime(m->timer_fd, 0, &its, NULL);
}

/* Waits (still handling signals) until the supervisor finished its first pass, or times out. */
static void wait_for_supervisor(master *m)
{
    int64_t deadline = clock_monotonic_ns() + MASTER_STARTUP_WAIT_NS;
    while (!atomic_load(&m->shared->startup_done) && clock_monotonic_ns() < deadline &&
           m->state != MASTER_STOPPING && !m->fatal) {
        struct pollfd pfd = {m->signal_fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) > 0)
            handle_signals(m);
    }
}

/* Startup and the supervision loop; returns the exit status. master_run cleans up after it. */
static int master_serve(master *m)
{
    config *cfg = m->cfg;

    log_info("starting analyticsd %s (APP_ENV=%s)", ANALYTICSD_VERSION, cfg->app_env);
    if (cfg->management_key_is_default)
        log_warn("MANAGEMENT_API_KEY is not set: the default key is in use; set a secret key");

    if (run_startup_database_work(cfg) != 0)
        return 1;
    m->listen_fd = listener_open(cfg->app_host, cfg->app_port);
    if (m->listen_fd < 0)
        return 1;
    if (cfg->metrics_port != 0) {
        metrics_http_listen_fd = listener_open(cfg->metrics_host, cfg->metrics_port);
        if (metrics_http_listen_fd < 0)
            return 1;
    }
    if (setup_signals(m) != 0) {
        log_error("cannot set up signal handling: %s", strerror(errno));
        return 1;
    }
    m->shared = shstate_create();
    metrics_create();
    snprintf(m->ring_name, sizeof(m->ring_name), "/analyticsd-%d-%d", cfg->app_port, (int)getuid());
    m->ring = ring_create(m->ring_name, (uint32_t)cfg->recompute_queue_size,
                          (uint32_t)cfg->recompute_workers);
    if (m->ring == NULL) {
        log_error("cannot create the job ring %s", m->ring_name);
        return 1;
    }

    /* CONFIG.md §5.1 steps 5–7: supervisor (bump, orphans, dispatch), workers, then HTTP. */
    add_slot(m, SLOT_SUPERVISOR, ROLE_SUPERVISOR, 1);
    for (int i = 0; i < cfg->recompute_workers; i++)
        add_slot(m, SLOT_RECOMPUTE_FIRST + i, ROLE_RECOMPUTE, i + 1);
    for (int i = 0; i < ingest_workers(cfg); i++)
        add_slot(m, SLOT_INGEST_FIRST + i, ROLE_INGEST, i + 1);
    wait_for_supervisor(m);
    if (m->state != MASTER_STOPPING && !m->fatal)
        start_http_generation(m);

    struct pollfd pfds[2] = {{m->signal_fd, POLLIN, 0}, {m->timer_fd, POLLIN, 0}};
    for (;;) {
        if (m->fatal && m->state != MASTER_STOPPING) {
            begin_stop(m, "fatal error");
            m->stop_unclean = true;
        }
        if (m->state == MASTER_STOPPING && count(m, ROLE_HTTP, false, false) == 0 &&
            count(m, ROLE_RECOMPUTE, false, false) == 0 &&
            count(m, ROLE_INGEST, false, false) == 0 &&
            count(m, ROLE_SUPERVISOR, false, false) == 0)
            break;
        if (poll(pfds, 2, respawn_wait_ms(m)) < 0 && errno != EINTR)
            break;
        if (m->state != MASTER_STOPPING)
            respawn_due(m, clock_monotonic_ns()); /* on time, not at the next tick */
        if (pfds[0].revents & POLLIN)
            handle_signals(m);
        if (pfds[1].revents & POLLIN) {
            uint64_t expirations;
            if (read(m->timer_fd, &expirations, sizeof(expirations)) > 0)
                tick(m);
        }
    }
    int rc = (m->stop_unclean || m->fatal) ? 1 : 0;
    log_info("stopped (exit status %d)", rc);
    return rc;
}

int master_run(config *cfg, const char *config_path)
{
    master *m = xcalloc(1, sizeof(*m));
    m->cfg = cfg;
    m->cfg_original = cfg;
    m->config_path = config_path;
    m->pid = getpid();
    m->listen_fd = -1;
    m->signal_fd = -1;
    m->timer_fd = -1;
    m->state = MASTER_STARTING;
    proctitle_set("analyticsd: master");
    int rc = master_serve(m);
    if (m->ring != NULL)
        ring_destroy(m->ring);
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    if (metrics_http_listen_fd >= 0)
        close(metrics_http_listen_fd);
    if (m->signal_fd >= 0)
        close(m->signal_fd);
    if (m->timer_fd >= 0)
        close(m->timer_fd);
    if (m->cfg != m->cfg_original) {
        config_free(m->cfg);
        free(m->cfg);
    }
    free(m);
    return rc;
}
