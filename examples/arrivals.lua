-- The open model: a user type driven by an arrival rate instead of a user
-- count. Forty arrivals a second each run one task on an idle user of the
-- pool; the pool grows (up to max_users) when the target slows down, and an
-- arrival that finds no idle user and no room is dropped and counted
-- (dropped_iterations in the summary).
--
--   swarmer demo-target --port 8080 &
--   swarmer -f examples/arrivals.lua --headless -t 30s

local Api = swarmer.user {
  name = "Api",
  host = "http://127.0.0.1:8080",
  arrivals = { rate = 40, per = "1s", pre_allocated = 5, max_users = 100 },
}

Api:task(3, function(self)
  self.http:get("/item/" .. swarmer.random(1, 100), { name = "/item/[id]" })
end)

-- One task in four waits on a slow endpoint: the rate holds, the pool grows.
Api:task(1, function(self)
  self.http:get("/slow?ms=250", { name = "/slow" })
end)

-- A ramping rate: 0 -> 20 a second over 10 s, held for 20 s. Runs beside Api.
local Ramp = swarmer.user {
  name = "Ramp",
  host = "http://127.0.0.1:8080",
  arrivals = {
    stages = { { duration = "10s", rate = 20 }, { duration = "20s", rate = 20 } },
    max_users = 50,
  },
}

Ramp:task(function(self)
  self.http:get("/", { name = "/" })
end)
