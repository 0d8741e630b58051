#!/usr/bin/env bash
# gRPC unary calls per second on one core: swarmer (50 users, one client
# each, bench/grpc.lua) against the tests' tonic Greeter server
# (crates/swarmer/examples/grpc_greeter.rs) pinned to core 0, next to
# h2load sending the same pre-encoded request (HelloRequest{name="bench"}
# behind its 5-byte gRPC prefix) on 50 streams of one connection, on core
# 1 as swarmer is. Prints both rates and their ratio.
#
# Run it on a quiet machine (two free cores).
# Usage: bench/grpc.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=bench/out
mkdir -p "$out/grpc/proto"
command -v h2load >/dev/null || {
  echo "installing nghttp2-client (h2load)…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client >/dev/null
}
cargo build --release -q -p swarmer --bin swarmer --example grpc_greeter
bin=target/release/swarmer

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
taskset -c 0 target/release/examples/grpc_greeter > "$out/grpc/url" &
pids+=($!)
for _ in $(seq 50); do [ -s "$out/grpc/url" ] && break; sleep 0.1; done
url=$(head -1 "$out/grpc/url")

# swarmer
cp examples/proto/hello.proto "$out/grpc/proto/"
cp bench/grpc.lua "$out/grpc/"
GRPC_URL="$url" taskset -c 1 "$bin" -f "$out/grpc/grpc.lua" --headless --cores 1 \
  -u 50 -r 1000 -t "${secs}s" --json --no-history > "$out/grpc.json" 2>/dev/null || true
swarmer=$(python3 - "$out/grpc.json" "$secs" <<'PY'
import json, sys
secs = float(sys.argv[2])
for e in json.load(open(sys.argv[1]))["stats"]:
    if e["method"] == "GRPC" and e["name"] == "bench":
        print(f"{e['num_requests'] / secs:.0f}")
        break
else:
    print(0)
PY
)

# h2load: the same request, pre-encoded.
printf '\x00\x00\x00\x00\x07\x0a\x05bench' > "$out/grpc/body.bin"
h2=$(taskset -c 1 h2load -D "$secs" -c 1 -m 50 -d "$out/grpc/body.bin" \
  -H 'content-type: application/grpc' -H 'te: trailers' \
  "$url/hello.Greeter/SayHello" 2>/dev/null | awk '/^finished in/ { print int($4) }')

echo "grpc unary: swarmer $swarmer calls/s (one core, 50 users), h2load ${h2:-0} calls/s (one connection, 50 streams)"
python3 -c "import sys; s, h = float(sys.argv[1]), float(sys.argv[2] or 0); print(f'ratio swarmer/h2load: {s / h:.2f}' if h else 'no h2load figure')" "$swarmer" "${h2:-0}"
