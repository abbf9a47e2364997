-- 90 % GET by id, 10 % POST of a new question (with the admin key).
local n = tonumber(os.getenv("KB_N") or "1000")
local key = os.getenv("KB_ADMIN_KEY") or "bench-admin-key-of-at-least-32-characters"
local counter = 0
math.randomseed(os.time() + 5)
request = function()
  counter = counter + 1
  if math.random(10) == 1 then
    local body = '{"title":"压测写入的问题 ' .. counter .. ' about goroutine","category":"golang",'
      .. '"tags":["bench"],"answers":[{"body":"写入路径的答案 ' .. counter .. '"}]}'
    return wrk.format("POST", "/api/v1/questions",
      { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }, body)
  end
  return wrk.format("GET", "/api/v1/questions/" .. math.random(1, n))
end
