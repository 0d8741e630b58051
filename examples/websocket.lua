-- WebSocket: connect, talk, close. Every upgrade is a "WS chat" entry,
-- messages sent and received are counters ("chat sent", "chat received"),
-- each session's duration is "WS chat session", and ws:request times one
-- round trip ("WS ping"). Point it at any echo server:
--
--   WS_URL=ws://127.0.0.1:8765/ swarmer -f examples/websocket.lua --headless -u 10 -r 10 -t 30s

local url = swarmer.env("WS_URL", "ws://127.0.0.1:8765/")

local Chat = swarmer.user { name = "Chat", wait = swarmer.between(0.5, 1) }

Chat:task(function(self)
  local ws = self.ws:connect(url, { name = "chat", timeout = 5 })
  if not ws then
    return -- a refused upgrade is in the failures table already
  end
  for i = 1, 3 do
    ws:send("hello " .. i)
    local msg = ws:recv({ timeout = 2 }) -- nil and why on a timeout or a close
    if msg == nil then
      break
    end
  end
  ws:send_binary(string.char(0, 1, 2, 255)) -- binary frames too
  local _, kind = ws:recv({ timeout = 2 }) -- kind: "binary" here
  -- One timed round trip: sends, then waits for the first matching reply.
  ws:request("ping", {
    name = "ping",
    timeout = 2,
    match = function(reply)
      return reply == "ping"
    end,
  })
  ws:close(1000, "bye")
end)
