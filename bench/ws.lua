-- bench/sockets.sh: each user holds one WebSocket and does round trips
-- with no wait; messages per second are the "bench sent" counter's rate.
local url = swarmer.env("WS_URL", "ws://127.0.0.1:18765/")
local U = swarmer.user { name = "WS", wait = swarmer.constant(0) }

function U:on_start()
  self.conn = self.ws:connect(url, { name = "bench" })
end

U:task(function(self)
  self.conn:send("0123456789abcdef")
  self.conn:recv({ timeout = 5 })
end)

function U:on_stop()
  self.conn:close()
end
