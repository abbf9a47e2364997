-- Shared by the abuse benchmark's scripts: counts responses by status class per thread and
-- prints them as one machine-readable line at the end:
--   STATUS 2xx=N 429=N overloaded=N other5xx=N other=N
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  ok, limited, overloaded, other5xx, other = 0, 0, 0, 0, 0
end

function response(status, headers, body)
  if status < 400 then
    ok = ok + 1
  elseif status == 429 then
    limited = limited + 1
  elseif status == 503 and body and string.find(body, "overloaded", 1, true) then
    overloaded = overloaded + 1
  elseif status >= 500 then
    other5xx = other5xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local t = { ok = 0, limited = 0, overloaded = 0, other5xx = 0, other = 0 }
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do
      t[k] = t[k] + (thread:get(k) or 0)
    end
  end
  io.write(string.format("STATUS 2xx=%d 429=%d overloaded=%d other5xx=%d other=%d\n",
    t.ok, t.limited, t.overloaded, t.other5xx, t.other))
end
