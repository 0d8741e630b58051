#!/usr/bin/env bash
# Swarmer against wrk, measured in the same run on this machine.
#
# 1. Throughput: nginx (Debian's, one worker pinned to core 0, a tiny body,
#    keepalive_requests 1000000 so nobody reconnects) is loaded from core 1
#    by `wrk -t1 -c50` and then by swarmer with 50 users doing GET / with no
#    wait on one core. Prints both rates, both generators' requests per
#    CPU-second (user + system) and the ratios swarmer/wrk.
# 2. HTTP/2: the same against nginx's h2 (TLS, ALPN), swarmer with
#    --http-version 2 against h2load (nghttp2's load generator, one stream
#    per connection at a time like a user: -m 1), both pinned to core 1.
# 3. Memory: resident memory per idle user, 10,000 users against 1,000.
#
# Usage: bench/run.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
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
    http2_max_requests 1000000;
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

echo "== throughput: $secs s each, load generator on core 1, nginx on core 0"
# Rates alone are noisy on two cores (the target shares the machine), so
# each generator's user+system CPU time is measured too: requests per
# CPU-second is the efficiency figure the two are compared on.
cpu_of() { awk '{print $1 + $2}' "$1"; }
/usr/bin/time -f "%U %S" -o "$out/wrk.time" \
  taskset -c 1 wrk -t1 -c50 -d"${secs}s" "http://127.0.0.1:$port/" > "$out/wrk.txt"
wrk_n=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
wrk_cpu=$(cpu_of "$out/wrk.time")

/usr/bin/time -f "%U %S" -o "$out/swarmer.time" \
  taskset -c 1 "$bin" -f bench/get.lua --headless --no-history --cores 1 -u 50 -r 1000 -t "${secs}s" \
  -H "http://127.0.0.1:$port" --json --loglevel warn > "$out/swarmer.json"
sw_n=$(python3 -c "
import json; d = json.load(open('$out/swarmer.json'))
print([e for e in d['stats'] if e['name'] == 'Aggregated'][0]['num_requests'])")
sw_cpu=$(cpu_of "$out/swarmer.time")
python3 -c "
secs, wn, wc, sn, sc = $secs, $wrk_n, $wrk_cpu, $sw_n, $sw_cpu
w_rate, s_rate = wn / secs, sn / secs
w_eff, s_eff = wn / wc, sn / sc
print(f'{\"\":8} {\"req/s\":>10} {\"CPU s\":>7} {\"req/CPU-s\":>10}')
print(f'wrk      {w_rate:10.1f} {wc:7.2f} {w_eff:10.0f}')
print(f'swarmer  {s_rate:10.1f} {sc:7.2f} {s_eff:10.0f}')
print(f'ratio    {s_rate / w_rate:10.3f} {\"\":7} {s_eff / w_eff:10.3f}  (swarmer / wrk; targets: rate >= 0.8, per CPU-s >= 1.0)')"

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
