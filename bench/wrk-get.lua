-- wrk running script code for every request, as swarmer runs a task for
-- every request: the like-for-like peer of `bench/get.lua`.
request = function()
  return wrk.format("GET", "/")
end
