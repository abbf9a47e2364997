-- Searches nobody asked before (a counter makes each one new), so every request needs its
-- query embedded: the query cache never answers. KB_SEMANTIC sets `semantic=` (empty: the
-- configured default).
local queries = {
  "goroutine%20%E8%B0%83%E5%BA%A6", "%E5%9E%83%E5%9C%BE%E5%9B%9E%E6%94%B6", "sync.Mutex",
  "how%20does%20the%20garbage%20collector%20work", "GMP%20%E8%B0%83%E5%BA%A6%E5%99%A8",
  "channel%20%E5%85%B3%E9%97%AD", "Raft%20leader%20election", "%E5%88%86%E5%B8%83%E5%BC%8F%E9%94%81",
  "slice%20%E6%89%A9%E5%AE%B9", "consistent%20hashing",
}
local semantic = os.getenv("KB_SEMANTIC") or ""
local n = 0
math.randomseed(os.time() + 3)
request = function()
  n = n + 1
  local q = queries[math.random(#queries)] .. "%20" .. tostring(math.random(1, 1e9))
  local extra = semantic ~= "" and ("&semantic=" .. semantic) or ""
  return wrk.format("GET", "/api/v1/search?q=" .. q .. extra)
end
