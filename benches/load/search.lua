-- Searches a person might type: Chinese, English and mixed, URL-encoded.
local queries = {
  "goroutine", "%E5%9E%83%E5%9C%BE%E5%9B%9E%E6%94%B6", "sync.Mutex",
  "%E4%B8%80%E8%87%B4%E6%80%A7%E5%93%88%E5%B8%8C", "GMP%20%E8%B0%83%E5%BA%A6%E5%99%A8",
  "channel%20%E5%85%B3%E9%97%AD", "Raft%20%E9%80%89%E4%B8%BB", "%E5%88%86%E5%B8%83%E5%BC%8F%E9%94%81",
  "slice%20%E6%89%A9%E5%AE%B9", "TCP%20%E4%B8%89%E6%AC%A1%E6%8F%A1%E6%89%8B",
}
math.randomseed(os.time() + 2)
request = function()
  return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)])
end
