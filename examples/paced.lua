-- A paced user: each user starts 2 iterations per second, whatever the
-- target does. When the target slows down, iterations start late and their
-- requests are also measured from when they were due (coordinated
-- omission), so the due-time percentiles show the delay a real client
-- would have seen.
--
--   swarmer demo-target --port 8080 &
--   swarmer -f examples/paced.lua --headless -u 20 -r 20 -t 30s

local Reader = swarmer.user {
  name = "Reader",
  wait = swarmer.constant_throughput(2),
  host = "http://127.0.0.1:8080",
}

Reader:task(function(self)
  self.http:get("/")
  -- Every tenth iteration the target takes 800 ms: longer than the 500 ms
  -- pacing interval, so the next iterations start late.
  local ms = swarmer.random(1, 10) == 1 and 800 or 20
  self.http:get("/slow?ms=" .. ms, { name = "/slow" })
end)
