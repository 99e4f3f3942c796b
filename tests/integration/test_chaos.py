"""tests/integration/test_chaos.py: the short form of the chaos scenarios (issue 6, parts 1-4).

The same scenarios as `deploy/dev chaos` (tests/chaos/run) with durations that fit CI: 10 s of
HTTP worker SIGKILLs under 16 connections, 40 recompute runs with recompute workers SIGKILLed
every 200-500 ms, 3 s Redis and PostgreSQL outages (private servers) under load, SIGHUP and
SIGTERM under 16 busy connections. Contract properties are asserted strictly (no lost runs, no
wrong snapshots, master alive, recovery without restart, SIGHUP refuses nothing, SIGTERM exits 0);
latency and percentage targets only with generous bounds (success >= 99 %, recovery < 5 s)
since CI machines are small and busy; respawns are checked by what the master did (every killed
worker replaced at once, without a back-off delay), not by wall time. Figures are printed.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))

import adtest  # noqa: E402
import scenarios  # noqa: E402

DB = None


def show(figures):
    for name, value, target in figures:
        print("    %-58s %s" % (name, value), flush=True)


def test_http_worker_chaos():
    figures, violations, info = scenarios.http_chaos(DB, duration=10, conns=16, workers=4,
                                                     kill_every=2.0, victims="oldest")
    show(figures)
    assert violations == [], violations
    s = info["summary"]
    assert s["requests"] > 500, s
    assert s["success"] >= 0.99, s
    # The master replaced every killed worker at once (no back-off delay; each came back: a
    # violation otherwise). How long a new worker takes to serve is a figure, not an assertion:
    # on a loaded two-core machine under ASan it passed 1 s once.
    assert info["backoffs"] == 0, info


def test_recompute_chaos():
    figures, violations, info = scenarios.recompute_chaos(
        DB, runs=40, workers=4, trigger_secs=4.0, kill_tail=6.0, wait_bound=45.0)
    show(figures)
    assert violations == [], violations
    assert info["accepted"] == 40, info


def test_dependency_outages_under_load():
    figures, violations, info = scenarios.outages(down=3.0, conns=16, gap=3.0)
    show(figures)
    assert violations == [], violations
    assert info["read_recovery"] < 5.0, info
    assert info["cache_back"] is not None and info["cache_back"] < 5.0, info


def test_lifecycle_under_load():
    figures, violations, info = scenarios.lifecycle(DB, conns=16, workers=4, shutdown_timeout=3.0,
                                                    settle=1.0)
    show(figures)
    assert violations == [], violations


if __name__ == "__main__":
    adtest.require_env()
    DB = adtest.ScratchDatabase()
    try:
        adtest.run([test_http_worker_chaos, test_recompute_chaos,
                    test_dependency_outages_under_load, test_lifecycle_under_load])
    finally:
        DB.drop()
