-- The well-behaved clients: a study app with its own key (quota raised for the benchmark).
-- 70 % GET by id, 10 % list, 10 % search, 10 % flashcard draws.
dofile("benches/abuse/counts.lua")
local n = tonumber(os.getenv("KB_N") or "1000")
local key = os.getenv("KB_APP_KEY") or ""
local auth = { ["Authorization"] = "Bearer " .. key }
local queries = { "goroutine", "sync.Mutex", "%E5%9E%83%E5%9C%BE%E5%9B%9E%E6%94%B6",
  "GMP%20%E8%B0%83%E5%BA%A6%E5%99%A8", "Raft%20%E9%80%89%E4%B8%BB" }
math.randomseed(os.time() + 11)
request = function()
  local r = math.random(10)
  if r == 1 then
    return wrk.format("GET", "/api/v1/questions?limit=20&cursor=" .. math.random(1, n), auth)
  elseif r == 2 then
    return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)], auth)
  elseif r == 3 then
    return wrk.format("GET", "/api/v1/quiz?count=5", auth)
  end
  return wrk.format("GET", "/api/v1/questions/" .. math.random(1, n), auth)
end
