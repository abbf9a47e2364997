-- GET by id with the app's key: the cheap request whose latency load shedding protects.
dofile("benches/abuse/counts.lua")
local n = tonumber(os.getenv("KB_N") or "1000")
local auth = { ["Authorization"] = "Bearer " .. (os.getenv("KB_APP_KEY") or "") }
math.randomseed(os.time() + 17)
request = function()
  return wrk.format("GET", "/api/v1/questions/" .. math.random(1, n), auth)
end
