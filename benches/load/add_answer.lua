-- POST /api/v1/questions/{id}/answers to a random existing question (N = the corpus size, from
-- the env), with the admin key; with KB_IDEMPOTENCY=1 each request carries an Idempotency-Key of
-- its own (the run, the wrk thread, a counter).
local n = tonumber(os.getenv("KB_N") or "1000")
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
  math.randomseed(os.time() + (tid or 0))
end
request = function()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }
  if keyed then
    headers["Idempotency-Key"] = prefix .. "-" .. counter
  end
  local body = '{"body":"压测追加的答案 ' .. prefix .. " " .. counter .. ' about channel"}'
  return wrk.format("POST", "/api/v1/questions/" .. math.random(1, n) .. "/answers", headers, body)
end
