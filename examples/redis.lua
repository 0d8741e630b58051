-- Redis over swarmer.tcp: a small RESP client in pure Lua, each command
-- timed with swarmer.record as a "REDIS <command>" entry. Each user keeps
-- one connection; a connection that fails is an exception and the user
-- reconnects on its next task.
--
--   redis-server --port 6379 --save "" &
--   REDIS_PORT=6379 swarmer -f examples/redis.lua --headless -u 10 -r 10 -t 30s

local host = swarmer.env("REDIS_HOST", "127.0.0.1")
local port = tonumber(swarmer.env("REDIS_PORT", "6379"))

-- A command as a RESP array of bulk strings.
local function encode(args)
  local parts = { "*" .. #args .. "\r\n" }
  for _, a in ipairs(args) do
    a = tostring(a)
    parts[#parts + 1] = "$" .. #a .. "\r\n" .. a .. "\r\n"
  end
  return table.concat(parts)
end

-- One reply: its value, or nil and the server's error message.
local function read_reply(s)
  local line = s:receive("*l")
  local kind, rest = line:sub(1, 1), line:sub(2)
  if kind == "+" then
    return rest
  elseif kind == "-" then
    return nil, rest
  elseif kind == ":" then
    return tonumber(rest)
  elseif kind == "$" then
    local n = tonumber(rest)
    if n < 0 then
      return nil -- the null bulk string: no such key
    end
    return s:receive(n + 2):sub(1, n)
  elseif kind == "*" then
    local out = {}
    for i = 1, tonumber(rest) do
      out[i] = read_reply(s)
    end
    return out
  end
  error("redis: unexpected reply " .. line)
end

local Client = swarmer.user { name = "Redis", wait = swarmer.between(0.01, 0.05) }

function Client:call(...)
  -- Taken while in use: if the call raises, the next one reconnects.
  local conn = self.conn or swarmer.tcp.connect(host, port, { timeout = 5 })
  self.conn = nil
  local name = ...
  local started = swarmer.now_ms()
  conn:send(encode({ ... }))
  local reply, err = read_reply(conn)
  swarmer.record {
    type = "REDIS",
    name = name,
    duration_ms = swarmer.now_ms() - started,
    success = err == nil,
    error = err,
  }
  self.conn = conn
  return reply, err
end

Client:task(function(self)
  local key = "swarmer:user:" .. self.id
  self:call("SET", key, "value " .. swarmer.random(1, 1000))
  local value = self:call("GET", key)
  if value == nil then
    error("GET " .. key .. " found nothing right after SET")
  end
  self:call("INCR", "swarmer:incr")
end)

function Client:on_stop()
  if self.conn then
    self.conn:close()
  end
end
