-- GET /api/v1/questions/{id} for a random existing id (N = the corpus size, from the env).
local n = tonumber(os.getenv("KB_N") or "1000")
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/questions/" .. math.random(1, n))
end
