-- A mixed load for the example project: simple GETs, CORS preflights, authenticated
-- requests, streaming responses, 404s and 500s, in rotation. Stops after WRK_LIMIT
-- responses (per thread; run with -t1) and prints one JSON line of counts.
local origin = os.getenv("WRK_ORIGIN") or "http://localhost:5173"
local limit = tonumber(os.getenv("WRK_LIMIT") or "0")
local mix = {
  wrk.format("GET", "/api/hello/", { ["Origin"] = origin }),
  wrk.format("OPTIONS", "/api/hello/", {
    ["Origin"] = origin,
    ["Access-Control-Request-Method"] = "POST",
    ["Access-Control-Request-Headers"] = "content-type",
  }),
  wrk.format("GET", "/api/whoami/", { ["X-Forwarded-User"] = "load-user" }),
  wrk.format("GET", "/api/stream/"),
  wrk.format("GET", "/no-such-page/"),
  wrk.format("GET", "/api/fail/", { ["Origin"] = origin }),
}
local i = 0
local stopped = false
responses, s2xx, s4xx, s5xx, sother = 0, 0, 0, 0, 0

request = function()
  i = i % #mix + 1
  return mix[i]
end

response = function(status, headers, body)
  responses = responses + 1
  if status >= 200 and status < 300 then s2xx = s2xx + 1
  elseif status >= 400 and status < 500 then s4xx = s4xx + 1
  elseif status >= 500 then s5xx = s5xx + 1
  else sother = sother + 1 end
  if limit > 0 and responses >= limit and not stopped then
    -- wrk's main thread sleeps for the whole -d duration; the harness sees this file
    -- and sends SIGINT, which ends the run and prints the summary.
    stopped = true
    local f = io.open(os.getenv("WRK_DONE_FILE") or "/dev/null", "w")
    if f then f:close() end
    wrk.thread:stop()
  end
end

local threads = {}
setup = function(thread) table.insert(threads, thread) end

done = function(summary, latency, requests)
  local t = { responses = 0, s2xx = 0, s4xx = 0, s5xx = 0, sother = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"responses": %d, "s2xx": %d, "s4xx": %d, "s5xx": %d, "sother": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"duration_us": %d}\n',
    t.responses, t.s2xx, t.s4xx, t.s5xx, t.sother, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
