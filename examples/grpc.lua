-- gRPC: unary calls and a server stream against the Greeter service of
-- proto/hello.proto. The .proto is compiled when a user connects (no
-- protoc needed) and travels to the workers with the script because
-- swarmer.files names it (which also checks it compiles at load time).
--
--   swarmer -f examples/grpc.lua --headless -u 10 -t 30s

swarmer.files { "proto/hello.proto" }

local Greeter = swarmer.user {
  name = "Greeter",
  wait = swarmer.between(0.5, 1),
}

function Greeter:on_start()
  self.g = assert(self.grpc:connect(swarmer.env("GRPC_URL", "http://127.0.0.1:50051"), {
    proto = "proto/hello.proto",
    metadata = { ["x-client"] = "swarmer" },
  }))
end

Greeter:task(3, function(self)
  local r = self.g:invoke("hello.Greeter/SayHello", { name = "user " .. self.id }, { timeout = 2 })
  if r.status == 0 then
    swarmer.log.debug(r.message.message)
  end
end)

Greeter:task(1, function(self)
  local seen = 0
  local r = self.g:stream("hello.Greeter/StreamHellos", { name = "stream", count = 3 }, function(msg)
    seen = seen + 1
  end)
  swarmer.log.debug("stream ended with", r.status_name, "after", seen, "messages")
end)
