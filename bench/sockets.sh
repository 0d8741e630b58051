#!/usr/bin/env bash
# Messages per second on one core for the protocols beside HTTP:
#
# 1. WebSocket: 50 users each doing send + recv round trips on one held
#    connection (bench/ws.lua) against an echo server pinned to core 0;
#    swarmer runs with --cores 1 on core 1. Prints messages sent +
#    received per second, then the peer's in the same run: plain
#    tokio-tungstenite (crates/script/examples/ws_peer.rs: a current-thread
#    runtime, 50 connections, the same 16-byte round trips for the same
#    seconds against the same server, on the same core) and the ratio
#    swarmer/peer, in messages per second and per CPU-second (the latter
#    holds better on a machine shared with other work). The echo server is
#    ws_peer's own (Rust) unless ECHO=python, which uses the Python
#    `websockets` package's: that one is the bottleneck of both clients
#    (10-21k messages/s for either, against 32-115k with the Rust server in
#    the same minutes), so its ratio says little about swarmer.
# 2. Raw sockets: 50 users each doing Redis GETs over swarmer.tcp
#    (bench/redis.lua, a RESP request parsed in Lua and timed with
#    swarmer.record) against Debian's redis-server on core 0. Prints
#    round trips per second, and redis-benchmark's (Redis's C client,
#    50 connections, no pipelining) on the same core with their ratio.
#
# Run it on a quiet machine (two free cores).
# Usage: bench/sockets.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
out=bench/out
mkdir -p "$out"

command -v redis-server >/dev/null || {
  echo "installing redis-server…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
}
echo_server=${ECHO:-rust}
[ "$echo_server" != python ] || python3 -c "import websockets" 2>/dev/null || {
  echo "installing the websockets Python package (the echo server)…"
  python3 -m pip install -q websockets
}
cargo build --release -q -p swarmer
# Built on its own: the script crate's dev-dependencies (tokio's
# test-util) must not change the swarmer binary being measured.
cargo build --release -q -p script --example ws_peer
bin=target/release/swarmer
peer=target/release/examples/ws_peer

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT

rate() { # rate FILE METHOD NAME: requests per second of one entry
  python3 - "$1" "$2" "$3" "$secs" <<'PY'
import json, sys
f, method, name, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
for e in json.load(open(f))["stats"]:
    if e["method"] == method and e["name"] == name:
        print(f"{e['num_requests'] / secs:,.0f}")
        break
else:
    print("no entry")
PY
}

# 1. WebSocket
if [ "$echo_server" = python ]; then
  taskset -c 0 python3 - <<'PY' &
import asyncio, websockets
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 18765):
        await asyncio.Future()
asyncio.run(main())
PY
else
  taskset -c 0 "$peer" echo 127.0.0.1:18765 &
fi
pids+=($!)
sleep 1
# Both clients run under /usr/bin/time: messages per CPU-second hold on a
# machine shared with other work, where messages per second need not.
WS_URL=ws://127.0.0.1:18765/ /usr/bin/time -f "%U %S" -o "$out/ws.cpu" \
  taskset -c 1 "$bin" -f bench/ws.lua --headless --cores 1 \
  -u 50 -r 1000 -t "${secs}s" --json --no-history > "$out/ws.json" 2>/dev/null || true
# The peer: the same round trips, without Lua, on the same core.
/usr/bin/time -f "%U %S" -o "$out/ws-peer.cpu" \
  taskset -c 1 "$peer" client ws://127.0.0.1:18765/ 50 "$secs" > "$out/ws-peer.txt" || true
python3 - "$out" "$secs" "$echo_server" <<'PY' || echo "websocket: no figures (see $out/ws.json, $out/ws-peer.txt)"
import json, sys
out, secs, echo = sys.argv[1], float(sys.argv[2]), sys.argv[3]
def cpu(f):
    try:
        return sum(float(x) for x in open(f).read().split()[-2:])
    except (OSError, ValueError):
        return 0.0
counts = {e["name"]: e["num_requests"] for e in json.load(open(f"{out}/ws.json"))["stats"]
          if e["method"] == "COUNT"}
sw_sent, sw_recv, sw_cpu = counts.get("bench sent", 0), counts.get("bench received", 0), cpu(f"{out}/ws.cpu")
peer = dict(kv.split("=", 1) for kv in open(f"{out}/ws-peer.txt").read().split() if "=" in kv)
p_sent, p_recv = int(peer.get("sent", 0)), int(peer.get("received", 0))
p_secs = float(peer.get("secs", 0)) or 1.0
p_cpu = cpu(f"{out}/ws-peer.cpu")
per_cpu = lambda n, c: f"{n / c:,.0f}" if c else "?"
print(f"websocket: swarmer {sw_sent / secs:,.0f} messages sent/s + {sw_recv / secs:,.0f} received/s, "
      f"{per_cpu(sw_sent, sw_cpu)} round trips per CPU-second (one core, 50 users, {echo} echo server)")
print(f"websocket: tokio-tungstenite peer {p_sent / p_secs:,.0f} messages sent/s + {p_recv / p_secs:,.0f} received/s, "
      f"{per_cpu(p_sent, p_cpu)} round trips per CPU-second (one core, 50 connections)")
if p_sent and sw_sent:
    print(f"ratio swarmer/peer: {(sw_sent / secs) / (p_sent / p_secs):.2f} (messages/s), "
          + (f"{(sw_sent / sw_cpu) / (p_sent / p_cpu):.2f} (per CPU-second)" if sw_cpu and p_cpu else "? (per CPU-second)"))
PY

# 2. Raw sockets (Redis)
taskset -c 0 redis-server --port 18379 --bind 127.0.0.1 --save "" --appendonly no \
  >/dev/null 2>&1 &
pids+=($!)
sleep 1
REDIS_PORT=18379 taskset -c 1 "$bin" -f bench/redis.lua --headless --cores 1 \
  -u 50 -r 1000 -t "${secs}s" --json --no-history > "$out/redis.json" 2>/dev/null || true
sw_redis=$(rate "$out/redis.json" REDIS GET)
echo "tcp (redis GET): $sw_redis round trips/s (one core, 50 users)"
# The peer: Redis's own C client, the same GETs on 50 connections, no
# pipelining, on the same core.
taskset -c 1 redis-benchmark -p 18379 -c 50 -n 500000 -t get -q --csv > "$out/redis-benchmark.csv" 2>/dev/null || true
rb=$(awk -F'","' '/GET/ {print $2}' "$out/redis-benchmark.csv" | tr -d '"')
echo "tcp (redis GET): redis-benchmark ${rb:-?} round trips/s (one core, 50 connections)"
python3 -c "import sys; s, p = sys.argv[1].replace(',', ''), sys.argv[2]
print(f'ratio swarmer/redis-benchmark: {float(s) / float(p):.2f}' if p else 'no redis-benchmark figure')" "$sw_redis" "${rb:-}"
