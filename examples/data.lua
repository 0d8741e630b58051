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
  -- Users are numbered from 1 on each core; wrap around the file.
  self.account = accounts[(self.id - 1) % #accounts + 1]
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
