#!/usr/bin/env bash
# How closely a run follows a linear ramp (--stages), second by second.
#
# Ramps idle users (bench/idle_task.lua: no connection) from 0 to USERS over
# RAMP, holds them 3 s, and reads back the --csv-full-history rows: each row
# has the actual users (`User Count`, as the workers last reported) and the
# plan at the instant that count was taken (the `Target Users` column: a
# worker counts its users when it sends its report, once a report interval,
# and the master holds the count against the plan of when it arrived, not
# of when the row is written). Prints, per row, the time into the run, both
# counts and the gap as a share of the plan and of the peak; then the
# largest gaps. The run ends by itself with its stages.
#
# The last column compares the count with the previous row's plan instead:
# how far behind a row would look if it were held against the plan of the
# row's own instant one second later.
#
# Usage: bench/ramp.sh [users, default 10000] [ramp, default 10s] [extra swarmer flags...]
# SWARMER_BIN=path uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-10000}
ramp=${2:-10s}
shift $(( $# > 2 ? 2 : $# ))
out=bench/out
mkdir -p "$out"
bin=${SWARMER_BIN:-}
if [[ -z "$bin" ]]; then
  nice -n 5 cargo build --release -q -p swarmer
  bin=target/release/swarmer
fi
prefix="$out/ramp"
rm -f "${prefix}_stats_history.csv"
"$bin" -f bench/idle_task.lua --headless --no-history --only-summary --stop-timeout 1s \
  --stages "$ramp:$users,3s:$users" --csv "$prefix" --csv-full-history -L info "$@" \
  > "$out/ramp.summary" 2> "$out/ramp.log" || true
grep -q "its load profile ended" "$out/ramp.log" || { echo "the run did not end with its stages" >&2; tail -5 "$out/ramp.log" >&2; exit 1; }

awk -F, -v peak="$users" '
  NR == 1 { for (i = 1; i <= NF; i++) if ($i == "Target Users") col = i; next }
  $4 != "Aggregated" { next }
  {
    if (t0 == "") t0 = $1
    actual = $2; plan = $col; gap = actual - plan
    # Past the last stage the run is stopping and plans 0: not a ramp row.
    if (plan == peak) seen_peak = 1
    if (plan == 0 && seen_peak) next
    share = plan > 0 ? 100 * gap / plan : 0
    of_peak = 100 * gap / peak
    prev_share = prev > 0 ? 100 * (actual - prev) / prev : 0
    printf "t=%3ds  plan %6d  actual %6d  gap %+6d  (%+6.1f%% of plan, %+5.1f%% of peak; %+6.1f%% of the previous plan)\n", $1 - t0, plan, actual, gap, share, of_peak, prev_share
    if (plan >= peak * 0.1 && (share < 0 ? -share : share) > worst) worst = (share < 0 ? -share : share)
    if ((of_peak < 0 ? -of_peak : of_peak) > worst_peak) worst_peak = (of_peak < 0 ? -of_peak : of_peak)
    if (prev >= peak * 0.1 && (prev_share < 0 ? -prev_share : prev_share) > worst_prev) worst_prev = (prev_share < 0 ? -prev_share : prev_share)
    prev = plan
  }
  END {
    printf "largest gap: %.1f%% of the plan (rows planning at least 10%% of the peak), %.1f%% of the peak, %.1f%% of the previous row'"'"'s plan\n", worst, worst_peak, worst_prev
  }' "${prefix}_stats_history.csv"
