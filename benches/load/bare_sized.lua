-- GET /questions/{id} on the bare server for a random id: the sized ceiling for GET by id.
local n = tonumber(os.getenv("KB_N") or "1000")
math.randomseed(os.time() + 7)
request = function()
  return wrk.format("GET", "/questions/" .. math.random(1, n))
end
