-- A page of 20 from a random point of the list, sometimes filtered by category.
local n = tonumber(os.getenv("KB_N") or "1000")
local cats = { "", "&category=golang", "&category=distributed", "&difficulty=hard" }
math.randomseed(os.time() + 1)
request = function()
  local path = "/api/v1/questions?limit=20&cursor=" .. math.random(0, n - 1) .. cats[math.random(#cats)]
  return wrk.format("GET", path)
end
