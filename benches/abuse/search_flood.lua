-- 64 clients hammering search with a key whose quota does not stop them: only load shedding
-- stands between them and everyone else.
dofile("benches/abuse/counts.lua")
local auth = { ["Authorization"] = "Bearer " .. (os.getenv("KB_APP_KEY") or "") }
local queries = { "goroutine", "sync.Mutex%20%E5%8E%9F%E7%90%86", "%E4%B8%80%E8%87%B4%E6%80%A7%E5%93%88%E5%B8%8C" }
math.randomseed(os.time() + 19)
request = function()
  return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)], auth)
end
