#!/usr/bin/env bash
# Catch-up throughput: how fast a pipeline processes a backlog with the
# machine to itself, the way stream processors are usually benchmarked
# (Nexmark reads pre-generated topics): the load generator is not on the
# cores while Pulse works. Usage:
#   [PULSE_FLAGS=...] [PIPELINE=city] [OUTPUT=zone_1m] [PROFILE=cpu.prof] [PROFILE_SECONDS=20] scripts/catchup.sh [rate=200000] [duration=60s] [sensors=10000] [zones=100]
# 1. Pulse starts with --disk-reserve 99.9%, so its pipelines hold (as on a
#    full disk) while `pulse loadgen city` writes DURATION of readings at
#    RATE to the embedded broker's Kafka port; Pulse stops.
# 2. Pulse starts again on the same data dir with PULSE_FLAGS; the run
#    ends once OUTPUT has folded every reading. Reported: readings per
#    second from ready to caught up, peak RSS and CPU of that process.
#    PROFILE=FILE writes a CPU profile of its first PROFILE_SECONDS.
# BACKLOG=DIR keeps the data dir of step 1 in DIR, or, if DIR exists,
# starts from a copy of it instead of step 1: builds compared on the same
# backlog (the same PULSE_FLAGS and pipeline).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-200000}; duration=${2:-60s}; sensors=${3:-10000}; zones=${4:-100}
pl=${PIPELINE:-city}; out=${OUTPUT:-zone_1m}
bindir=$(mktemp -d); bin=$bindir/pulse
go build -o "$bin" ./cmd/pulse
data=$(mktemp -d)
http=${HTTP_ADDR:-127.0.0.1:18080}; kafka=${KAFKA_ADDR:-127.0.0.1:19092}; debug=${DEBUG_ADDR:-127.0.0.1:16061}
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$data" "$bindir"' EXIT
# start PATH FLAGS...: starts Pulse and waits for PATH to answer (/readyz;
# a holding Pulse is not ready, its /metrics answer).
start() {
  local path=$1; shift
  "$bin" run --data-dir "$data" --http "$http" --kafka-listen "$kafka" --log-level error "$@" ${PULSE_FLAGS:-} &
  pid=$!
  for _ in $(seq 300); do curl -sf "http://$http$path" >/dev/null && return; sleep 0.1; done
  echo "pulse did not become ready" >&2; exit 1
}
metric() { curl -s "http://$http/metrics" | awk -v m="$1" '$1==m {print $2}'; }

if [ -n "${BACKLOG:-}" ] && [ -d "$BACKLOG" ]; then
  cp -a "$BACKLOG/." "$data/"
  echo "backlog from $BACKLOG"
else
  start /metrics --disk-reserve 99.9%
  "$bin" loadgen city --brokers "$kafka" --rate "$rate" --duration "$duration" --sensors "$sensors" --zones "$zones" --concurrency 8 | tail -1
  folded=$(metric "pulse_window_events_total{output=\"$out\",pipeline=\"$pl\"}")
  [ "${folded:-0}" = 0 ] || { echo "the pipeline folded $folded readings while it should hold" >&2; exit 1; }
  kill -TERM $pid; wait $pid || true
  [ -n "${BACKLOG:-}" ] && cp -a "$data" "$BACKLOG"
fi
start /readyz ${PROFILE:+--debug-listen "$debug"}
t0=$(date +%s.%N)
[ -n "${PROFILE:-}" ] && curl -s -o "$PROFILE" "http://$debug/debug/pprof/profile?seconds=${PROFILE_SECONDS:-20}" &
total=
for _ in $(seq 6000); do
  acc=$(metric "pulse_pipeline_events_total{pipeline=\"$pl\"}")
  lag=$(metric "pulse_pipeline_consumer_lag{pipeline=\"$pl\"}")
  win=$(metric "pulse_window_events_total{output=\"$out\",pipeline=\"$pl\"}")
  if [ "${lag:-1}" = 0 ] && [ -n "${acc:-}" ] && [ "${acc}" = "${win:-x}" ] && [ "${acc}" != 0 ]; then total=$acc; break; fi
  sleep 0.1
done
t1=$(date +%s.%N)
[ -n "$total" ] || { echo "the pipeline did not catch up within 10 minutes" >&2; exit 1; }
awk -v n="$total" -v a="$t0" -v b="$t1" 'BEGIN { printf "caught up: %d readings in %.1f s = %.0f readings/s\n", n, b-a, n/(b-a) }'
echo "pulse RSS: $(ps -o rss= -p $pid) KiB, peak $(awk '/VmHWM/ {print $2}' /proc/$pid/status) KiB"
awk -v hz="$(getconf CLK_TCK)" -v s="$t0" -v e="$t1" '{ cpu = ($14 + $15) / hz; printf "pulse CPU: %.1f s (%.2f cores from ready to caught up)\n", cpu, cpu / (e - s) }' /proc/$pid/stat
