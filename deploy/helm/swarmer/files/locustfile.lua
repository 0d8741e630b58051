-- Swarmer quickstart: shoppers and browsers against the demo target.
--
--   swarmer -f examples/quickstart.lua --demo-target --headless -u 50 -r 10 -t 20s
--
-- (--demo-target starts the demo shop on a free port and aims the run at
-- it; or run `swarmer demo-target --port 8080` yourself and leave it out.)
--
-- About one item in ten is out of stock: those requests are marked failed
-- on purpose (see "out of stock" in the failures table), so this run ends
-- with exit code 1 unless you pass --exit-code-on-error 0.

local Shopper = swarmer.user {
  name = "Shopper",
  weight = 3,
  wait = swarmer.between(1, 3),
  host = "http://127.0.0.1:8080",
}

-- Runs once per user, before its first task: the session cookie the demo
-- target sets is kept in this user's own cookie jar.
function Shopper:on_start()
  self.http:post("/login", { form = { user = "shopper" .. self.id } })
  self.basket = 0
end

Shopper:task(5, function(self)
  self.http:get("/")
end)

Shopper:task { weight = 3, name = "item", tags = { "browse" }, fn = function(self)
  -- `name` groups every item under one stats row.
  local r = self.http:get("/item/" .. swarmer.random(1, 100), { name = "/item/[id]" })
  if r.status == 200 and not r:json().in_stock then
    r:failure("out of stock")
  end
end }

Shopper:task { weight = 1, name = "buy", tags = { "buy" }, fn = function(self)
  local id = swarmer.random(1, 100)
  local r = self.http:post("/cart", { json = { item = id, quantity = 1 } })
  if r.ok then self.basket = self.basket + 1 end
  self.http:get("/cart")
end }

local Browser = swarmer.user {
  name = "Browser",
  weight = 1,
  wait = swarmer.between(0.5, 2),
  host = "http://127.0.0.1:8080",
}

Browser:task(3, function(self)
  self.http:get("/")
end)

Browser:task(1, function(self)
  self.http:get("/slow?ms=" .. swarmer.random(20, 200), { name = "/slow" })
end)
