-- POST /api/v1/questions at a steady, modest rate: each connection waits KB_WRITE_DELAY_MS
-- (default 50) between a 201 and its next request, so one connection writes about 15 a second.
local key = os.getenv("KB_ADMIN_KEY") or "bench-admin-key-of-at-least-32-characters"
local pause = tonumber(os.getenv("KB_WRITE_DELAY_MS") or "50")
local run = os.getenv("KB_RUN") or tostring(os.time())
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  counter = 0
  prefix = run .. "-" .. tostring(tid or 0)
end
function delay()
  return pause
end
request = function()
  counter = counter + 1
  local body = '{"title":"webhook 压测的问题 ' .. prefix .. " " .. counter .. ' about goroutine",'
    .. '"category":"golang","tags":["bench"],"answers":[{"body":"写入路径的答案 ' .. counter .. '"}]}'
  return wrk.format("POST", "/api/v1/questions",
    { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }, body)
end
