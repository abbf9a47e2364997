request = function()
  return wrk.format("GET", "/readyz")
end
