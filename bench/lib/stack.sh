# shellcheck shell=bash
# bench/lib/stack.sh: the private stack of bench/run (sourced by it, runs in its shell): one
# PostgreSQL cluster, one Redis, one analyticsd, one h2o and (for the SMS ingestion benchmark) one
# nats-server with JetStream, all on free loopback ports under $BENCH_DIR, started and stopped by
# the bench itself. It never talks to the shared servers (5436/6383/4226) or to a developer's
# deploy/dev stack, and it stops only what it started (by pid).
#
# Needs: BENCH_DIR (absolute, created by the caller), BENCH_LIB (this directory), ANALYTICSD_BIN.
# Sets: PG_PORT PG_BIN PG_DATA PG_SOCK DATABASE_URL PG_CONNINFO REDIS_PORT REDIS_URL APP_PORT
#       SVC_PID H2O_PORT H2O_PID MGMT_KEY NATS_PORT NATS_PID NATS_URL.

MGMT_KEY="bench-management-key"
SVC_PID=""
H2O_PID=""
NATS_PID=""
REDIS_PIDFILE=""
PG_DATA=""

bench_say() { printf 'bench: %s\n' "$*" >&2; }
bench_die() {
    printf 'bench: error: %s\n' "$*" >&2
    exit 1
}

freeport() { python3 "$BENCH_LIB/benchlib.py" freeport; }

# PostgreSQL refuses to run as root: as root its commands run as the postgres system user.
as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# ---- PostgreSQL ----------------------------------------------------------------------------

stack_pg_start() {
    local d v best=-1 user
    for d in /usr/lib/postgresql/*/bin; do
        v="${d#/usr/lib/postgresql/}"
        v="${v%/bin}"
        case "$v" in '' | *[!0-9]*) continue ;; esac
        if [ -x "$d/postgres" ] && [ "$v" -gt "$best" ]; then
            best="$v"
            PG_BIN="$d"
        fi
    done
    [ -n "${PG_BIN:-}" ] || bench_die "no PostgreSQL server under /usr/lib/postgresql"
    PG_PORT="$(freeport)"
    PG_DATA="$BENCH_DIR/pg"
    PG_SOCK="$BENCH_DIR/pg-socket"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || bench_die "the postgres system user does not exist"
        user=postgres
        install -d -o postgres -g postgres -m 0700 "$PG_DATA"
        install -d -o postgres -g postgres -m 0755 "$PG_SOCK"
        install -o postgres -g postgres -m 0644 /dev/null "$BENCH_DIR/postgresql.log"
    else
        user="$(id -un)"
        mkdir -m 0700 "$PG_DATA"
        mkdir -p "$PG_SOCK"
        : >"$BENCH_DIR/postgresql.log"
    fi
    bench_say "initdb ($("$PG_BIN/postgres" --version)) in $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$user" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >>"$BENCH_DIR/postgresql.log" 2>&1 ||
        bench_die "initdb failed; see $BENCH_DIR/postgresql.log"
    # Room for 256 pgbench clients plus the service's pools; memory for a 10M-event data set.
    as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$BENCH_DIR/postgresql.log" -w -t 60 -s \
        -o "-p $PG_PORT -k '$PG_SOCK' -c listen_addresses=127.0.0.1 -c max_connections=400 \
            -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=30min \
            -c work_mem=64MB -c maintenance_work_mem=512MB" >&2 ||
        bench_die "PostgreSQL did not start; see $BENCH_DIR/postgresql.log"
    as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U "$user" -d postgres \
        -c "CREATE ROLE app LOGIN SUPERUSER PASSWORD 'app'" \
        -c "CREATE DATABASE bench OWNER app ENCODING 'UTF8' TEMPLATE template0" >&2 ||
        bench_die "cannot create the bench role and database"
    DATABASE_URL="postgres://app:app@127.0.0.1:$PG_PORT/bench?sslmode=disable"
    PG_CONNINFO="host=127.0.0.1 port=$PG_PORT user=app password=app dbname=bench sslmode=disable"
    bench_say "PostgreSQL on 127.0.0.1:$PG_PORT"
}

stack_pg_stop() {
    [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ] || return 0
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 -s >&2 ||
        as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 -s >&2 || true
}

# psql against the bench database, quiet, failing on the first error; extra args follow.
bench_psql() { PGOPTIONS="-c statement_timeout=900s" psql -X -q -v ON_ERROR_STOP=1 "$PG_CONNINFO" "$@"; }

# ---- Redis ---------------------------------------------------------------------------------

stack_redis_start() {
    REDIS_PORT="$(freeport)"
    REDIS_PIDFILE="$BENCH_DIR/redis.pid"
    mkdir -p "$BENCH_DIR/redis"
    cat >"$BENCH_DIR/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
daemonize yes
pidfile $REDIS_PIDFILE
logfile $BENCH_DIR/redis.log
dir $BENCH_DIR/redis
save ""
appendonly no
EOF
    redis-server "$BENCH_DIR/redis.conf" </dev/null >&2 || bench_die "redis-server failed; see $BENCH_DIR/redis.log"
    local i
    for i in $(seq 1 50); do
        [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ] && break
        [ "$i" -eq 50 ] && bench_die "Redis did not answer on 127.0.0.1:$REDIS_PORT"
        sleep 0.1
    done
    REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    bench_say "Redis on 127.0.0.1:$REDIS_PORT"
}

stack_redis_stop() {
    local pid
    [ -n "$REDIS_PIDFILE" ] && [ -f "$REDIS_PIDFILE" ] || return 0
    pid="$(tr -dc '0-9' <"$REDIS_PIDFILE")"
    [ -n "$pid" ] && stop_pid "$pid" 10
}

# ---- processes -----------------------------------------------------------------------------

stop_pid() { # pid seconds: TERM, wait, then KILL
    local pid="$1" secs="$2" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((secs * 10))); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    bench_say "pid $pid ignored SIGTERM for ${secs}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

# stop_child VAR seconds: stops the background child whose pid is in $VAR (stop_pid), reaps it
# and empties VAR; nothing when VAR is empty.
stop_child() {
    local pid="${!1}"
    [ -n "$pid" ] || return 0
    stop_pid "$pid" "$2"
    wait "$pid" 2>/dev/null || true
    printf -v "$1" '%s' ""
}

# ---- analyticsd ----------------------------------------------------------------------------

# stack_svc_start http_workers recompute_workers [NAME=value ...]: the extra arguments are added
# to the service's environment (e.g. NATS_URL=... for the ingestion benchmark). With
# SVC_START_SOFT=1 in the environment, a service that exits during startup makes it return 1
# (SVC_PID still set, for the caller to inspect) instead of ending the bench. BENCH_SVC_ENV
# (space-separated NAME=value words) is added to every start, e.g. BENCH_SVC_ENV=REPORT_LOCAL_CACHE_MB=0
# to measure without the local copies of issue 16.
stack_svc_start() {
    [ -z "$SVC_PID" ] || bench_die "internal: service already running"
    APP_PORT="$(freeport)"
    env -i PATH="$PATH" \
        DATABASE_URL="$DATABASE_URL" REDIS_URL="$REDIS_URL" \
        APP_HOST=127.0.0.1 APP_PORT="$APP_PORT" APP_ENV=bench \
        HTTP_WORKERS="$1" RECOMPUTE_WORKERS="$2" \
        MANAGEMENT_API_KEY="$MGMT_KEY" APP_AUTO_MIGRATE=false APP_AUTO_SEED=false \
        MAX_REPORT_RANGE_DAYS=400 RECOMPUTE_MAX_PENDING=10000 ${BENCH_SVC_ENV:-} "${@:3}" \
        "$ANALYTICSD_BIN" serve >>"$BENCH_DIR/analyticsd.log" 2>&1 </dev/null &
    SVC_PID=$!
    local i code
    for i in $(seq 1 150); do
        code="$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$APP_PORT/api/v1/health" || true)"
        [ "$code" = "200" ] && break
        if ! kill -0 "$SVC_PID" 2>/dev/null; then
            [ "${SVC_START_SOFT:-0}" = 1 ] && return 1
            bench_die "analyticsd exited at startup; see $BENCH_DIR/analyticsd.log"
        fi
        [ "$i" -eq 150 ] && bench_die "analyticsd not healthy within 15 s (last status $code); see $BENCH_DIR/analyticsd.log"
        sleep 0.1
    done
    bench_say "analyticsd (pid $SVC_PID, HTTP_WORKERS=$1, RECOMPUTE_WORKERS=$2) on 127.0.0.1:$APP_PORT"
}

stack_svc_stop() { stop_child SVC_PID 25; }

# ---- h2o: the static-file reference --------------------------------------------------------

stack_h2o_start() { # body_file threads
    local dir="$BENCH_DIR/h2o"
    mkdir -p "$dir"
    chmod 0755 "$BENCH_DIR" "$dir"
    cp "$1" "$dir/body.json"
    chmod 0644 "$dir/body.json"
    H2O_PORT="$(freeport)"
    cat >"$dir/h2o.conf" <<EOF
# Written by bench/run: h2o serving one static file, the reference of benchmark 1.
listen:
  host: 127.0.0.1
  port: $H2O_PORT
num-threads: $2
error-log: $dir/error.log
hosts:
  "127.0.0.1:$H2O_PORT":
    paths:
      "/body.json":
        file.file: $dir/body.json
EOF
    h2o -c "$dir/h2o.conf" >>"$dir/stdout.log" 2>&1 </dev/null &
    H2O_PID=$!
    local i
    for i in $(seq 1 100); do
        [ "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "http://127.0.0.1:$H2O_PORT/body.json" || true)" = "200" ] && break
        kill -0 "$H2O_PID" 2>/dev/null || bench_die "h2o exited at startup; see $dir/error.log"
        [ "$i" -eq 100 ] && bench_die "h2o did not serve within 10 s; see $dir/error.log"
        sleep 0.1
    done
    bench_say "h2o (pid $H2O_PID, $2 threads) serving $(wc -c <"$dir/body.json") bytes on 127.0.0.1:$H2O_PORT"
}

stack_h2o_stop() { stop_child H2O_PID 10; }

# ---- nats-server: JetStream for the SMS ingestion benchmark ---------------------------------

stack_nats_start() {
    [ -z "$NATS_PID" ] || return 0
    NATS_PORT="$(freeport)"
    mkdir -p "$BENCH_DIR/nats"
    nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$BENCH_DIR/nats" \
        >>"$BENCH_DIR/nats.log" 2>&1 </dev/null &
    NATS_PID=$!
    NATS_URL="nats://127.0.0.1:$NATS_PORT"
    local i
    for i in $(seq 1 150); do
        PYTHONDONTWRITEBYTECODE=1 python3 "$BENCH_LIB/../ingest/ingest.py" ping "$NATS_URL" 2>/dev/null && break
        kill -0 "$NATS_PID" 2>/dev/null || bench_die "nats-server exited at startup; see $BENCH_DIR/nats.log"
        [ "$i" -eq 150 ] && bench_die "nats-server JetStream not answering within 15 s; see $BENCH_DIR/nats.log"
        sleep 0.1
    done
    bench_say "nats-server $(nats-server --version | awk '{print $2}') (pid $NATS_PID) with JetStream on 127.0.0.1:$NATS_PORT"
}

stack_nats_stop() { stop_child NATS_PID 15; }

stack_stop_all() {
    stack_h2o_stop
    stack_svc_stop
    stack_nats_stop
    stack_redis_stop
    stack_pg_stop
}
