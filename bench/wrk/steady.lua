-- bench/wrk/steady.lua: a wrk script (LuaJIT, run inside wrk by bench/run for benchmark 7's
-- uncached reads) that counts the responses completed inside a window of the run: from
-- BENCH_WARMUP_S seconds after the start (default 1) for BENCH_WINDOW_S seconds (default 4), so
-- that the figure is the steady rate, measured exactly as bench/run measures pgbench from its
-- per-transaction log. wrk's own Requests/sec counts from the first second and loses, on average,
-- half a request per connection at the end (those in flight when it stops): at a few requests per
-- second and connection that is several percent. Run wrk for at least warm-up + window seconds.
-- done() prints "steady <responses in the window> <of them not 2xx> <window seconds>".
--
--   BENCH_WARMUP_S=1 BENCH_WINDOW_S=4 wrk -t2 -c8 -d5s -s bench/wrk/steady.lua URL

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")

local function now() -- CLOCK_MONOTONIC, seconds
    ffi.C.clock_gettime(1, ts)
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local warmup = tonumber(os.getenv("BENCH_WARMUP_S") or "1")
local window = tonumber(os.getenv("BENCH_WINDOW_S") or "4")
local threads = {}

-- Main state, before the threads start: one window for all of them.
function setup(thread)
    local t0 = now()
    thread:set("lo", t0 + warmup)
    thread:set("hi", t0 + warmup + window)
    table.insert(threads, thread)
end

-- Thread states.
count = 0
bad = 0

function response(status, headers, body)
    local t = now()
    if t >= lo and t < hi then
        count = count + 1
        if status < 200 or status > 299 then
            bad = bad + 1
        end
    end
end

function done(summary, latency, requests)
    local n, b = 0, 0
    for _, thread in ipairs(threads) do
        n = n + thread:get("count")
        b = b + thread:get("bad")
    end
    io.write(string.format("steady %d %d %g\n", n, b, window))
end
