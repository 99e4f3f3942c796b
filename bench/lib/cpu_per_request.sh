#!/usr/bin/env bash
#
# bench/lib/cpu_per_request.sh: CPU time per request of a wrk run, for the whole machine and
# for chosen processes. Run by hand while profiling (bench/README.md, "Profiling the cached
# read"); bench/run does not use it.
#
#   bench/lib/cpu_per_request.sh URL CONNS [PID ...]
#
# Runs `wrk -t2 -c CONNS -d5s URL`, then prints req/s, the machine's busy CPU time per request
# (user + nice + system + irq + softirq over all cores, from /proc/stat), and for each PID its
# on-CPU time per request (all threads, from /proc/PID/task/*/schedstat) with its read and
# write system calls per request (/proc/PID/io). Per-request CPU is steadier than req/s on a
# shared machine: a neighbour's load lowers req/s but not the work each request costs.
set -euo pipefail

[ $# -ge 2 ] || {
    echo "usage: $0 URL CONNS [PID ...]" >&2
    exit 2
}
url="$1" conns="$2"
shift 2
tick="$(getconf CLK_TCK)"

snap() { # pid -> "oncpu_ns syscr syscw"
    local t=0 a b c f
    for f in /proc/"$1"/task/*/schedstat; do
        read -r a b c <"$f"
        t=$((t + a))
    done
    echo "$t $(awk '/^syscr/ {r=$2} /^syscw/ {w=$2} END {print r, w}' /proc/"$1"/io)"
}

declare -A before
for p in "$@"; do before[$p]="$(snap "$p")"; done
read -r _ u1 n1 s1 i1 io1 q1 sq1 _ </proc/stat
out="$(wrk -t2 -c"$conns" -d5s "$url")"
read -r _ u2 n2 s2 i2 io2 q2 sq2 _ </proc/stat

reqs="$(awk '/requests in/ {print $1}' <<<"$out")"
rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
busy=$(((u2 - u1) + (n2 - n1) + (s2 - s1) + (q2 - q1) + (sq2 - sq1)))
idle=$(((i2 - i1) + (io2 - io1)))
awk -v r="$rps" -v n="$reqs" -v b="$busy" -v i="$idle" -v t="$tick" 'BEGIN {
    printf "%.0f req/s; machine %.1f us CPU per request (idle %.0f%%)\n", r, b / t / n * 1e6,
        100 * i / (b + i) }'
for p in "$@"; do
    read -r t0 r0 w0 <<<"${before[$p]}"
    read -r t1 r1 w1 <<<"$(snap "$p")"
    awk -v name="$(cat /proc/"$p"/comm)" -v p="$p" -v t=$((t1 - t0)) -v r=$((r1 - r0)) \
        -v w=$((w1 - w0)) -v n="$reqs" 'BEGIN {
        printf "  %-18s %7d  %5.1f us CPU, %.2f reads, %.2f writes per request\n", name, p,
            t / 1e3 / n, r / n, w / n }'
done
