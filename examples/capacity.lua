-- A closed-loop load shape: keep adding users while the 95th percentile of
-- the last window stays under 300 ms, then hold what the target could take
-- for 20 s, and end the run. The master calls the shape about once a second
-- with the time into the run and the live figures; workers only follow.
--
--   swarmer -f examples/capacity.lua --demo-target --headless
--
-- ctx.run_time: seconds since the run started.
-- ctx.stats: users, rps, fail_ratio, p50, p95, p99 (ms, nil until measured).
-- Return users, spawn_rate [, user_types], or nil to end the run.

local Shopper = swarmer.user {
  name = "Shopper",
  wait = swarmer.between(0.2, 0.5),
  host = "http://127.0.0.1:8080",
}

Shopper:task(function(self)
  -- The demo target answers /slow after ms milliseconds: slower as more
  -- users pile in, to give the loop something to find.
  self.http:get("/slow?ms=" .. math.floor(self.id % 400), { name = "/slow" })
end)

local STEP = 5            -- users added per second while healthy
local MAX_USERS = 200     -- never go past this, whatever the figures say
local HOLD_S = 20         -- how long to hold the capacity found
local users, held_since = 0, nil

swarmer.shape(function(ctx)
  local p95 = ctx.stats.p95
  if held_since == nil then
    if (p95 == nil or p95 < 300) and users < MAX_USERS then
      users = users + STEP
    else
      held_since = ctx.run_time
      swarmer.log("capacity: holding " .. users .. " users (p95 " .. tostring(p95) .. " ms)")
    end
  elseif ctx.run_time - held_since >= HOLD_S then
    return nil
  end
  return users, 50
end)
