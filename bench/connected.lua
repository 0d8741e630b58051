-- One request a second per user, each user on its own keep-alive
-- connection (every user has its own HTTP client).
local C = swarmer.user { name = "Connected", wait = swarmer.constant_pacing(1) }
C:task(1, function(self) self.http:get("/") end)
