-- Test data from a file: every user logs in as one row of data/users.csv
-- (path relative to this script). The file is read once per core and
-- shared by all users.
--
--   swarmer demo-target --port 8080 &
--   swarmer -f examples/data.lua --headless -u 10 -r 5 -t 30s

local accounts = swarmer.data("data/users.csv")

local Member = swarmer.user {
  name = "Member",
  wait = swarmer.between(1, 3),
  host = "http://127.0.0.1:8080",
}

function Member:on_start()
  -- self.index is unique across the run (all workers and cores) while the
  -- user lives, so concurrent users never log in as the same account as
  -- long as there are no more users than rows; past that, wrap around.
  -- (self.id only counts the users of one core: it repeats across cores.)
  self.account = accounts[(self.index - 1) % #accounts + 1]
  self.http:post("/login", { form = { user = self.account.user } })
  swarmer.log.debug("logged in as", self.account.user)
end

Member:task(2, function(self)
  self.http:get("/cart")
end)

Member:task(1, function(self)
  local favourite = tonumber(self.account.favourite_item)
  self.http:get("/item/" .. favourite, { name = "/item/[id]" })
end)
