-- Idle users: each runs one empty task, then waits 60 s. Measures what a
-- user costs in memory when it does nothing.
local Idle = swarmer.user { name = "Idle", wait = swarmer.constant(60) }
Idle:task(1, function(self) end)
