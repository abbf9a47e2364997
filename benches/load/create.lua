-- POST /api/v1/questions, a new question each time (with the admin key); with KB_IDEMPOTENCY=1
-- each request carries an Idempotency-Key of its own (the run, the wrk thread, a counter).
local key = os.getenv("KB_ADMIN_KEY") or "bench-admin-key-of-at-least-32-characters"
local keyed = os.getenv("KB_IDEMPOTENCY") == "1"
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
request = function()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }
  if keyed then
    headers["Idempotency-Key"] = prefix .. "-" .. counter
  end
  local body = '{"title":"幂等压测的问题 ' .. prefix .. " " .. counter .. ' about goroutine",'
    .. '"category":"golang","tags":["bench"],"answers":[{"body":"写入路径的答案 ' .. counter .. '"}]}'
  return wrk.format("POST", "/api/v1/questions", headers, body)
end
