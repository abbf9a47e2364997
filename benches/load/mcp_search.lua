-- The searches of search.lua as MCP tool calls: one JSON-RPC `tools/call` of
-- `search_questions` per POST to /mcp (stateless: no session to open first). Counts a result
-- that is a tool error (`"isError":true`) as a failure, like a non-2xx.
local queries = {
  "goroutine", "垃圾回收", "sync.Mutex", "一致性哈希", "GMP 调度器",
  "channel 关闭", "Raft 选主", "分布式锁", "slice 扩容", "TCP 三次握手",
}
math.randomseed(os.time() + 3)
local n = 0
local tool_errors = 0
request = function()
  n = n + 1
  local body = string.format(
    '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"search_questions","arguments":{"query":"%s","limit":10}}}',
    n, queries[math.random(#queries)])
  return wrk.format("POST", "/mcp", {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2025-06-18",
  }, body)
end
response = function(status, headers, body)
  if status == 200 and body:find('"isError":true', 1, true) then
    tool_errors = tool_errors + 1
  end
end
done = function(summary, latency, requests)
  io.write(string.format("TOOL_ERRORS %d\n", tool_errors))
end
