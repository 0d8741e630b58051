-- bench/grpc.sh: each user holds one gRPC client and makes unary calls
-- with no wait; calls per second are the entry's rate. grpc.sh runs a
-- copy beside examples/proto/hello.proto (files stay in a script's folder).
swarmer.files { "proto/hello.proto" }
local url = swarmer.env("GRPC_URL", "http://127.0.0.1:50051")
local U = swarmer.user { name = "GRPC", wait = swarmer.constant(0) }

function U:on_start()
  self.g = assert(self.grpc:connect(url, { proto = "proto/hello.proto" }))
end

U:task(function(self)
  self.g:invoke("hello.Greeter/SayHello", { name = "bench" }, { name = "bench" })
end)
