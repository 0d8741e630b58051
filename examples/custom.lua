-- Recording work that is not a single HTTP request: here a whole checkout
-- flow timed as one "flow" entry, next to its HTTP requests. The same call
-- records gRPC calls, database queries or anything a script can time.
--
--   swarmer demo-target --port 8080 &
--   swarmer -f examples/custom.lua --headless -u 10 -r 5 -t 30s

local Buyer = swarmer.user {
  name = "Buyer",
  wait = swarmer.between(1, 2),
  host = "http://127.0.0.1:8080",
}

function Buyer:on_start()
  self.http:post("/login", { form = { user = "buyer" .. self.id } })
end

Buyer:task(function(self)
  local started = swarmer.now_ms()
  local ok = true
  for _ = 1, 3 do
    local r = self.http:get("/item/" .. swarmer.random(1, 100), { name = "/item/[id]" })
    ok = ok and r.ok
  end
  local r = self.http:post("/cart", { json = { item = swarmer.random(1, 100), quantity = 2 } })
  ok = ok and r.ok
  swarmer.record {
    type = "flow",
    name = "checkout",
    duration_ms = swarmer.now_ms() - started,
    success = ok,
    error = (not ok) and "a step failed" or nil,
  }
end)
