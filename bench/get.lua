-- The bench user: one task, GET /, no wait. Measures the engine, not a scenario.
local Bench = swarmer.user { name = "Bench", wait = swarmer.constant(0) }
Bench:task(1, function(self) self.http:get("/") end)
