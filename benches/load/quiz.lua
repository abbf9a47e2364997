-- A draw of ten random questions, sometimes filtered.
local filters = { "", "&category=golang", "&difficulty=easy", "&tag=gc" }
math.randomseed(os.time() + 4)
request = function()
  return wrk.format("GET", "/api/v1/quiz?count=10" .. filters[math.random(#filters)])
end
