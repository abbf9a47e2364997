request = function()
  return wrk.format("GET", "/bare")
end
