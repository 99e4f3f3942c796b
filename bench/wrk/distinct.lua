-- bench/wrk/distinct.lua: wrk script of `bench/run --uncached-mode distinct` (benchmark 2). Every
-- request reads the status-counts report with parameters no earlier request used, so each one
-- misses the cache: thread t of T walks k = t, t+T, t+2T, … and k picks date_to (one of the
-- last 300 days), the span (1–30 days) and limit (1–100): 900,000 distinct combinations, far
-- more than a few seconds of load can use. Runs inside wrk (LuaJIT), one copy per thread.

local threads_total = 0

function setup(thread)
   thread:set("tid", threads_total)
   threads_total = threads_total + 1
end

function init(args)
   k = tid or 0
   step = 64 -- larger than any thread count bench/run uses
   today = os.time()
end

local function day(offset_days)
   return os.date("!%Y-%m-%d", today - offset_days * 86400)
end

function request()
   local n = k
   k = k + step
   local limit = n % 100 + 1
   n = math.floor(n / 100)
   local span = n % 30 + 1
   n = math.floor(n / 30)
   local to_off = n % 300
   local path = string.format(
      "/api/v1/reports/status-counts/run?window=day&date_from=%s&date_to=%s&limit=%d",
      day(to_off + span - 1), day(to_off), limit)
   return wrk.format("GET", path)
end
