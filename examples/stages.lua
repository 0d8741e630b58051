-- A load profile in the script (Locust's LoadTestShape): browsers ramp up,
-- hold, then a burst of buyers joins, and everyone ramps down. The run ends
-- by itself when the last stage ends.
--
--   swarmer -f examples/stages.lua --demo-target --headless
--
-- (--no-shape -u 10 -t 30s runs a fixed count instead; --stages 10s:20,10s:0
-- replaces the shape from the command line.)

local Browser = swarmer.user {
  name = "Browser",
  weight = 3,
  wait = swarmer.between(0.5, 1.5),
  host = "http://127.0.0.1:8080",
}

Browser:task(function(self)
  self.http:get("/")
end)

local Buyer = swarmer.user {
  name = "Buyer",
  wait = swarmer.between(0.5, 1.5),
  host = "http://127.0.0.1:8080",
}

Buyer:task(function(self)
  self.http:get("/item/" .. swarmer.random(1, 100), { name = "/item/[id]" })
end)

swarmer.shape { stages = {
  -- Ramp linearly from 0 to 20 users over 10 s, then hold 20 for 10 s.
  { duration = "10s", users = 20 },
  { duration = "10s", users = 20 },
  -- 30 users at once (20 per second), Buyers only, for 10 s.
  { duration = "10s", users = 30, spawn_rate = 20, user_types = { "Buyer" } },
  -- Down to 0 over 5 s: the run then ends.
  { duration = "5s", users = 0 },
} }
