-- GET /api/v1/questions/{id} where 90 % of requests go to 1 % of the ids (a hot set, as a
-- study site's popular questions), the rest uniformly at random.
local n = tonumber(os.getenv("KB_N") or "1000")
local hot = math.max(1, math.floor(n / 100))
math.randomseed(os.time() + 23)
request = function()
  local id
  if math.random(10) <= 9 then
    id = math.random(1, hot)
  else
    id = math.random(1, n)
  end
  return wrk.format("GET", "/api/v1/questions/" .. id)
end
