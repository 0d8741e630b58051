#!/usr/bin/env bash
# Swarmer against wrk, measured in the same run on this machine.
#
# 1. Throughput: nginx (Debian's, one worker pinned to core 0, a tiny body,
#    keepalive_requests 1000000 so nobody reconnects) is loaded from core 1
#    by `wrk -t1 -c50`, by the same wrk calling a Lua function for every
#    request (`bench/wrk-get.lua`), and by swarmer with 50 users doing GET /
#    with no wait on one core, in turn, ROUNDS times. Prints each run's rate,
#    requests per CPU-second (user + system) and CPU per request, and the
#    medians of the per-round ratios swarmer/wrk and swarmer/wrk+lua.
# 2. HTTP/2: the same against nginx's h2 (TLS, ALPN), swarmer with
#    --http-version 2 against h2load (nghttp2's load generator, one stream
#    per connection at a time like a user: -m 1), both pinned to core 1.
# 3. Memory: resident memory per idle user, 10,000 users against 1,000.
#
# Usage: [ROUNDS=3] bench/run.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rounds=${ROUNDS:-3}
out=bench/out
mkdir -p "$out"

if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null || ! command -v h2load >/dev/null ||
  [ ! -x /usr/bin/time ]; then
  echo "installing nginx, wrk, h2load and time from Debian's packages…"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk nghttp2-client time >/dev/null
fi
cargo build --release -q -p swarmer
bin=target/release/swarmer

port=18089
h2port=18090
[ -f "$out/h2.key" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$out/h2.key" -out "$out/h2.crt" -days 30 -subj /CN=localhost >/dev/null 2>&1
cat > "$out/nginx.conf" <<CONF
worker_processes 1;
worker_cpu_affinity 01;
pid $PWD/$out/nginx.pid;
error_log $PWD/$out/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok\n"; }
  }
  server {
    # "listen ... http2" is what nginx 1.22 (Debian 12) knows.
    listen 127.0.0.1:$h2port ssl http2;
    ssl_certificate $PWD/$out/h2.crt;
    ssl_certificate_key $PWD/$out/h2.key;
    keepalive_requests 1000000;
    location / { return 200 "ok\n"; }
  }
}
CONF
# A run interrupted earlier may have left its nginx on the port.
nginx -c "$PWD/$out/nginx.conf" -p "$PWD/$out" -s stop 2>/dev/null && sleep 0.5 || true
nginx -c "$PWD/$out/nginx.conf" -p "$PWD/$out"
trap 'nginx -c "$PWD/$out/nginx.conf" -p "$PWD/$out" -s stop 2>/dev/null || true' EXIT
sleep 0.5

echo "== throughput: $rounds rounds of $secs s each, load generator on core 1, nginx on core 0"
# Rates alone are noisy on two cores (the target shares the machine), so
# each generator's user+system CPU time is measured too: requests per
# CPU-second is the efficiency figure they are compared on. Rounds run the
# three in turn, and the ratios are medians of the per-round ratios: a VM
# varies by 20% from one run to the next, less within one round.
cpu_of() { awk '{print $1 + $2}' "$1"; }
for r in $(seq 1 "$rounds"); do
  /usr/bin/time -f "%U %S" -o "$out/wrk.$r.time" \
    taskset -c 1 wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:$port/" > "$out/wrk.$r.txt"
  # wrk calling a Lua function for every request, as swarmer runs a task
  # for every request: the like-for-like peer, shown for context.
  /usr/bin/time -f "%U %S" -o "$out/wrk-lua.$r.time" \
    taskset -c 1 wrk -t1 -c50 -d"${secs}s" -s bench/wrk-get.lua "http://127.0.0.1:$port/" > "$out/wrk-lua.$r.txt"
  /usr/bin/time -f "%U %S" -o "$out/swarmer.$r.time" \
    taskset -c 1 "$bin" -f bench/get.lua --headless --no-history --cores 1 -u 50 -r 1000 -t "${secs}s" \
    -H "http://127.0.0.1:$port" --json --loglevel warn > "$out/swarmer.$r.json"
done
python3 - "$out" "$secs" "$rounds" <<'PY'
import json, statistics, sys
out, secs, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def cpu(name, r):
    user, system = open(f"{out}/{name}.{r}.time").read().split()[-2:]
    return float(user) + float(system)
def wrk_count(name, r):
    line = next(l for l in open(f"{out}/{name}.{r}.txt") if "requests in" in l)
    return int(line.split()[0])
def swarmer_count(r):
    stats = json.load(open(f"{out}/swarmer.{r}.json"))["stats"]
    return next(e for e in stats if e["name"] == "Aggregated")["num_requests"]
rows = {"wrk": [], "wrk+lua": [], "swarmer": []}
for r in range(1, rounds + 1):
    rows["wrk"].append((wrk_count("wrk", r), cpu("wrk", r)))
    rows["wrk+lua"].append((wrk_count("wrk-lua", r), cpu("wrk-lua", r)))
    rows["swarmer"].append((swarmer_count(r), cpu("swarmer", r)))
print(f'{"round":<6}{"":10} {"req/s":>10} {"CPU s":>7} {"req/CPU-s":>10} {"us CPU/req":>11}')
for r in range(rounds):
    for name, runs in rows.items():
        n, c = runs[r]
        print(f'{r + 1:<6}{name:10} {n / secs:10.1f} {c:7.2f} {n / c:10.0f} {c / n * 1e6:11.2f}')
def ratios(name, peer):
    rate = [a[0] / b[0] for a, b in zip(rows[name], rows[peer])]
    eff = [(a[0] / a[1]) / (b[0] / b[1]) for a, b in zip(rows[name], rows[peer])]
    return statistics.median(rate), statistics.median(eff), min(eff), max(eff)
rate, eff, lo, hi = ratios("swarmer", "wrk")
print(f"swarmer / wrk      rate {rate:.3f}, per CPU-s {eff:.3f} (rounds {lo:.3f}-{hi:.3f}); "
      "targets: rate >= 0.8, per CPU-s >= 1.0")
rate, eff, lo, hi = ratios("swarmer", "wrk+lua")
print(f"swarmer / wrk+lua  rate {rate:.3f}, per CPU-s {eff:.3f} (rounds {lo:.3f}-{hi:.3f})")
# Swarmer's median count, for the HTTP/2 comparison below.
open(f"{out}/swarmer.median", "w").write(str(statistics.median(n for n, _ in rows["swarmer"])))
PY
sw_n=$(cat "$out/swarmer.median")

echo "== HTTP/2 over TLS: $secs s each, load generator on core 1, nginx on core 0"
/usr/bin/time -f "%U %S" -o "$out/h2load.time" \
  taskset -c 1 h2load -D "$secs" -c 50 -m 1 -t 1 "https://127.0.0.1:$h2port/" > "$out/h2load.txt"
h2_n=$(awk '/^requests:/ {print $8}' "$out/h2load.txt")
h2_cpu=$(cpu_of "$out/h2load.time")
/usr/bin/time -f "%U %S" -o "$out/swarmer-h2.time" \
  taskset -c 1 "$bin" -f bench/get.lua --headless --no-history --cores 1 -u 50 -r 1000 -t "${secs}s" \
  -H "https://127.0.0.1:$h2port" --http-version 2 --insecure --json --loglevel warn > "$out/swarmer-h2.json" \
  2> "$out/swarmer-h2.log"
sw2_n=$(python3 -c "
import json; d = json.load(open('$out/swarmer-h2.json'))
print([e for e in d['stats'] if e['name'] == 'Aggregated'][0]['num_requests'])")
sw2_cpu=$(cpu_of "$out/swarmer-h2.time")
python3 -c "
secs, hn, hc, sn, sc, s1 = $secs, $h2_n, $h2_cpu, $sw2_n, $sw2_cpu, $sw_n
print(f'{\"\":8} {\"req/s\":>10} {\"CPU s\":>7} {\"req/CPU-s\":>10}')
print(f'h2load   {hn / secs:10.1f} {hc:7.2f} {hn / hc:10.0f}')
print(f'swarmer  {sn / secs:10.1f} {sc:7.2f} {sn / sc:10.0f}')
print(f'ratio    {sn / hn:10.3f} {\"\":7} {(sn / sc) / (hn / hc):10.3f}  (swarmer / h2load)')
print(f'swarmer HTTP/2 over TLS / HTTP/1.1 plain: {sn / s1:.3f} of the rate')"

echo "== memory per idle user"
rss_with() {
  local users=$1
  "$bin" -f bench/idle.lua --headless --no-history -u "$users" -r 100000 -t 30s -H "http://127.0.0.1:$port" \
    --only-summary --loglevel warn > /dev/null 2>&1 &
  local pid=$!
  sleep 4  # all users spawned and idle
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -INT "$pid"; wait "$pid" || true
  echo "$rss"
}
small=$(rss_with 1000)
large=$(rss_with 10000)
python3 -c "
small, large = $small, $large
per = (large - small) / 9000
print(f'RSS with 1,000 users {small} KiB, with 10,000 users {large} KiB')
print(f'per idle user        {per:.2f} KiB (target <= 16 KiB)')"
