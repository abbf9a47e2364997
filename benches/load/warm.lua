-- GET /api/v1/questions/{id} for ids 1..N in turn, then around again (two wrk threads, each
-- walking every other id): every question read once, as on a server that has been up a while.
local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("offset", threads - 1)
end
local n = tonumber(os.getenv("KB_N") or "1000")
local id = 0
init = function(args)
  id = offset or 0
end
request = function()
  id = id + 2
  if id > n then id = (offset or 0) + 1 end
  return wrk.format("GET", "/api/v1/questions/" .. id)
end
