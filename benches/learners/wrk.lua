-- benches/learners.sh's wrk script. With KB_SEARCH=1, searches a person might type (the
-- queries of benches/load/search.lua); otherwise the URL given to wrk, as it is. At the end
-- (after -d, or on SIGINT: wrk then stops early and reports the time it ran) prints one line:
--   RESULT requests seconds p50_ms p90_ms p99_ms max_ms non2xx socket_errors
local queries = {
  "goroutine", "%E5%9E%83%E5%9C%BE%E5%9B%9E%E6%94%B6", "sync.Mutex",
  "%E4%B8%80%E8%87%B4%E6%80%A7%E5%93%88%E5%B8%8C", "GMP%20%E8%B0%83%E5%BA%A6%E5%99%A8",
  "channel%20%E5%85%B3%E9%97%AD", "Raft%20%E9%80%89%E4%B8%BB", "%E5%88%86%E5%B8%83%E5%BC%8F%E9%94%81",
  "slice%20%E6%89%A9%E5%AE%B9", "TCP%20%E4%B8%89%E6%AC%A1%E6%8F%A1%E6%89%8B",
}
local search = os.getenv("KB_SEARCH") == "1"
math.randomseed(os.time() + 7)

if search then
  request = function()
    return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)])
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.2f %.2f %.2f %.2f %.2f %d %d\n",
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
