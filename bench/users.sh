#!/usr/bin/env bash
# How many users swarmer holds, measured on this machine.
#
# 1. 100,000 idle users (bench/idle_task.lua: no connection, each records
#    one sample from its task) on every core: how many were created and ran
#    their task, resident memory per user (against a 1,000-user run), and
#    the time from the start of the ramp to "all users spawned".
# 2. 15,000 users on ONE core, each with its own connection, one request a
#    second against the bundled demo target (on the other core): requests
#    per second kept, failures, and whether all were spawned. When the
#    open-files limit caps a run swarmer says so once, naming `ulimit -n`.
#
# Usage: bench/users.sh [idle users, default 100000] [connected users, default 15000]
set -euo pipefail
cd "$(dirname "$0")/.."
idle=${1:-100000}
connected=${2:-15000}
out=bench/out
mkdir -p "$out"
nice -n 5 cargo build --release -q -p swarmer
bin=target/release/swarmer

# Runs swarmer in the background with $1 users of $2 and prints, once all are
# spawned: resident KiB, seconds from the first "spawning" line to "all
# users spawned", then stops it and prints its --json summary to $3.
measure() {
  local users=$1 script=$2 json=$3; shift 3
  local log="$out/users-$users.log"
  : > "$log"
  "$bin" -f "$script" --headless --no-history --json --only-summary -u "$users" -r "$users" -t 600s \
    --loglevel info "$@" > "$json" 2> "$log" &
  local pid=$! start; start=$(date +%s.%N)
  local deadline=$((SECONDS + 300))
  until grep -q "all $users users spawned" "$log"; do
    if ! kill -0 "$pid" 2>/dev/null || (( SECONDS > deadline )); then
      echo "not all $users users were spawned; last lines:" >&2; tail -5 "$log" >&2
      kill -INT "$pid" 2>/dev/null || true; wait "$pid" || true; return 1
    fi
    sleep 0.1
  done
  local spawned; spawned=$(date +%s.%N)
  sleep 3  # every user has run its first task
  local rss; rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -INT "$pid"; wait "$pid" || true
  python3 -c "print($rss, round($spawned - $start, 1))"
}

echo "== $idle idle users on $(nproc) cores"
read -r small_rss _ < <(measure 1000 bench/idle_task.lua "$out/idle-1000.json")
read -r big_rss big_secs < <(measure "$idle" bench/idle_task.lua "$out/idle-$idle.json")
python3 - "$out/idle-$idle.json" "$idle" "$small_rss" "$big_rss" "$big_secs" <<'PY'
import json, sys
path, users, small, big, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
d = json.load(open(path))
ran = sum(e["num_requests"] for e in d["stats"] if e["name"] == "ran")
print(f"created and ran their task  {ran:>8} of {users}")
print(f"exceptions                  {sum(e['count'] for e in d.get('exceptions', [])):>8}")
print(f"RSS                         {big} KiB ({small} KiB with 1,000 users)")
print(f"memory per user             {(big - small) / (users - 1000):.2f} KiB")
print(f"spawn time                  {secs} s (start of the run to all spawned, 1 s report resolution)")
PY

echo "== $connected users on one core, each with its own connection, 1 request/s"
target_log="$out/demo-target.log"
taskset -c 0 "$bin" demo-target --port 0 > "$target_log" 2>&1 &
target=$!
trap 'kill $target 2>/dev/null || true' EXIT
until grep -q "listening on" "$target_log"; do sleep 0.1; done
url=$(grep "listening on" "$target_log" | awk '{print $NF}')
json="$out/connected-$connected.json"
"$bin" -f bench/connected.lua --headless --no-history --json --only-summary --cores 1 \
  -u "$connected" -r 5000 -t 40s -H "$url" --loglevel info > "$json" 2> "$out/connected.log" &
pid=$!
taskset -p -c 1 "$pid" > /dev/null
wait "$pid" || true
grep -E "ulimit -n|all $connected users spawned|could not create" "$out/connected.log" | head -3 || true
python3 - "$json" "$connected" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); users = int(sys.argv[2])
agg = [e for e in d["stats"] if e["name"] == "Aggregated"][0]
# The ramp takes users/5000 s; the rate is measured over the 40 s run.
print(f"requests                    {agg['num_requests']} ({agg['num_failures']} failed)")
print(f"requests per second         {agg['num_requests'] / 40:.0f} over 40 s (ideal {users} once all run)")
print(f"median / p99 response       {agg.get('median_response_time')} / {agg.get('response_time_percentile_0.99', '?')} ms")
errs = d.get("errors", [])[:3]
for e in errs: print(f"  {e['occurrences']} x {e['error']}")
PY
