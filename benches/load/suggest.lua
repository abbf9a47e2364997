-- Prefixes as typed into a search box.
local prefixes = { "go", "gor", "sync", "ch", "%E5%88%86%E5%B8%83", "%E5%9E%83%E5%9C%BE", "ra", "tc" }
math.randomseed(os.time() + 3)
request = function()
  return wrk.format("GET", "/api/v1/search/suggest?q=" .. prefixes[math.random(#prefixes)])
end
