-- Stand-in for examples/quickstart.lua, which this file must copy byte for
-- byte (crates/swarmer/tests/k8s_manifests.rs checks it once that exists):
--   cp examples/quickstart.lua deploy/kubernetes/base/scripts/locustfile.lua
local Visitor = swarmer.user { weight = 1, wait = swarmer.between(1, 2) }

Visitor:task(1, function(self) self.http:get("/") end)
