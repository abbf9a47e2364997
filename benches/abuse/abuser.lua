-- The abusive client: no key, expensive searches as fast as it can.
dofile("benches/abuse/counts.lua")
local queries = { "goroutine%20channel%20%E5%8C%BA%E5%88%AB", "sync.Mutex%20%E5%8E%9F%E7%90%86",
  "%E4%B8%BA%E4%BB%80%E4%B9%88%E9%9C%80%E8%A6%81%20Raft%20%E9%80%89%E4%B8%BB" }
math.randomseed(os.time() + 13)
request = function()
  return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)])
end
