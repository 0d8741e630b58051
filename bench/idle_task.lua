-- Idle users that prove they run: each records one sample from its task
-- (no connection, no request), then waits ten minutes. The run's request
-- count is the number of users that were created and ran their task.
local Idle = swarmer.user { name = "Idle", wait = swarmer.constant(600) }
Idle:task(1, function(self)
  swarmer.record { type = "task", name = "ran", duration_ms = 0 }
end)
