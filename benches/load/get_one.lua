-- GET /api/v1/questions/{id}, always the same id: the rendered-question cache hit alone.
request = function()
  return wrk.format("GET", "/api/v1/questions/16")
end
