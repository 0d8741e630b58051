-- bench/sockets.sh: GET round trips on one raw socket per user, no wait,
-- each timed with swarmer.record (the cost a pure-Lua client pays).
local port = tonumber(swarmer.env("REDIS_PORT", "18379"))
local U = swarmer.user { name = "Redis", wait = swarmer.constant(0) }

function U:on_start()
  self.conn = swarmer.tcp.connect("127.0.0.1", port)
end

U:task(function(self)
  local t0 = swarmer.now_ms()
  self.conn:send("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n")
  local head = self.conn:receive("*l")
  if head ~= "$-1" then
    self.conn:receive(tonumber(head:sub(2)) + 2)
  end
  swarmer.record { type = "REDIS", name = "GET", duration_ms = swarmer.now_ms() - t0 }
end)

function U:on_stop()
  self.conn:close()
end
