#!/usr/bin/env bash
# Benchmark (figures, not a test): `hubsoak soak` keeping 10,000 simulated users on the
# simulator, activity every 60 s, pings every 5 s. Prints the soak process's RSS, CPU as
# % of one core at steady state, /metrics scrape time and series count.
# Usage: tests/bench/soak-10k.sh [TARGET] [MEASURE_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
TARGET=${1:-10000}
MEASURE=${2:-60}
cargo build --release --quiet
BIN=$PWD/target/release/hubsoak
WORK=$(mktemp -d)
cleanup() { kill "${SOAK:-}" "${MOCK:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

export JUPYTERHUB_API_TOKEN=bench-token
"$BIN" mock-hub --listen 127.0.0.1:0 --spawn-delay 2s --spawn-jitter 1s >"$WORK/mock.out" 2>"$WORK/mock.err" &
MOCK=$!
for _ in $(seq 100); do grep -q ENDPOINT "$WORK/mock.out" 2>/dev/null && break; sleep 0.1; done
export JUPYTERHUB_ENDPOINT=$(sed -n 's/^export JUPYTERHUB_ENDPOINT=//p' "$WORK/mock.out")

HUBSOAK__POPULATION__SPAWN_RATE=6000 HUBSOAK__POPULATION__MAX_SPAWNS_IN_FLIGHT=500 \
HUBSOAK__POPULATION__SESSION_MIN=30m HUBSOAK__POPULATION__SESSION_MAX=60m \
HUBSOAK__ACTIVITY__INTERVAL=60s HUBSOAK__PING__INTERVAL=5s HUBSOAK__HUB__MAX_IN_FLIGHT=256 \
  "$BIN" --log-format json soak --target "$TARGET" --metrics-listen 127.0.0.1:0 2>"$WORK/soak.err" &
SOAK=$!
for _ in $(seq 100); do grep -q 'admin server listening' "$WORK/soak.err" 2>/dev/null && break; sleep 0.1; done
ADDR=$(grep 'admin server listening' "$WORK/soak.err" | sed -E 's/.*"addr":"([^"]+)".*/\1/')
METRICS="http://$ADDR/metrics"

running() { curl -s "$METRICS" | awk '/^hubsoak_servers\{state="running"\}/ {print $2}'; }
START=$(date +%s)
until [ "$(running)" = "$TARGET" ]; do
  [ $(( $(date +%s) - START )) -lt 600 ] || { echo "did not reach $TARGET running in 600 s" >&2; exit 1; }
  sleep 2
done
RAMP=$(( $(date +%s) - START ))

ticks() { awk '{print $14 + $15}' "/proc/$SOAK/stat"; }
HZ=$(getconf CLK_TCK)
T0=$(ticks); W0=$(date +%s.%N)
sleep "$MEASURE"
T1=$(ticks); W1=$(date +%s.%N)
CPU=$(echo "scale=2; 100 * ($T1 - $T0) / $HZ / ($W1 - $W0)" | bc)
RSS=$(awk '/^VmRSS/ {print int($2/1024)}' "/proc/$SOAK/status")
HWM=$(awk '/^VmHWM/ {print int($2/1024)}' "/proc/$SOAK/status")
SCRAPES=$(for _ in $(seq 20); do curl -s -o /dev/null -w '%{time_total}\n' "$METRICS"; done | sort -n)
SCRAPE_MED=$(echo "$SCRAPES" | sed -n 10p)
SCRAPE_MAX=$(echo "$SCRAPES" | tail -n 1)
SERIES=$(curl -s "$METRICS" | grep -vc '^#')
DROPPED=$(curl -s "$METRICS" | awk '/^hubsoak_actions_dropped_total/ {s += $2} END {print s}')
ACTIVITY=$(curl -s "$METRICS" | awk '/^hubsoak_requests_total\{operation="activity"\}/ {print $2}')

echo "target:             $TARGET running (ramp ${RAMP}s)"
echo "RSS:                ${RSS} MiB (peak ${HWM} MiB)"
echo "CPU (steady, ${MEASURE}s): ${CPU}% of one core"
echo "/metrics scrape:    median ${SCRAPE_MED}s, max ${SCRAPE_MAX}s over 20"
echo "series:             $SERIES"
echo "activity posts:     $ACTIVITY, actions dropped: $DROPPED"
