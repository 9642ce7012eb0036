#!/usr/bin/env bash
# End-to-end load test: builds pulse, starts `pulse run` on free ports with a
# fresh data dir, drives it with `pulse loadgen city` over HTTP, and reports
# ingest and pipeline throughput from /metrics. Usage:
#   [PIN_PULSE=0] [PIN_LOADGEN=1] [HTTP_ADDR=127.0.0.1:18080] [KAFKA_ADDR=127.0.0.1:19092] [PULSE_FLAGS="--live-interval 50ms"] [VIA=kafka] [WARMUP=5] [WATCH=zone_1m] [PROFILE=cpu.prof] scripts/loadtest.sh [rate=100000] [duration=30s] [sensors=10000] [zones=100]
# PIN_PULSE and PIN_LOADGEN pin Pulse and the load generator to those CPUs
# (taskset -c), e.g. to give Pulse one core and measure overload against
# that capacity.
# PROFILE=FILE writes a CPU profile of Pulse over the load (from the end of
# the warm-up, for PROFILE_SECONDS, default 10) to FILE, for `go tool pprof`,
# through a profiler listener on DEBUG_ADDR (default 127.0.0.1:16061).
# VIA=kafka makes the load generator produce to the embedded broker's Kafka
# port instead of POSTing to the HTTP ingest API. Latency quantiles are
# reported for the whole run and for the steady state: from WARMUP seconds
# after the load starts (group joins, first fetches) to its end, the steady
# state also at each point on the way (shuffle poll, shuffle commit, window
# fold: pulse_pipeline_stage_latency_seconds). During the
# load a client watches the live view of output WATCH (the dashboard's
# default, zone_1m), so that its partial results are computed and pushed as
# for an open dashboard; WATCH= watches nothing.
# PIPELINE=NAME and OUTPUT=NAME measure another pipeline reading the city
# stream (default city and zone_1m: the run ends when OUTPUT folded every
# event), e.g. with PULSE_FLAGS="--builtin=false --pipelines scripts/scale".
# NEXT=PIPELINE names a second-level pipeline (one whose source is another
# pipeline's output, given with PULSE_FLAGS="--pipelines DIR"): the run
# then also waits for its lag to reach 0 and reports the events it read.
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-100000}; duration=${2:-30s}; sensors=${3:-10000}; zones=${4:-100}
pl=${PIPELINE:-city}; out=${OUTPUT:-zone_1m}
bindir=$(mktemp -d); bin=$bindir/pulse
go build -o "$bin" ./cmd/pulse
data=$(mktemp -d)
http=${HTTP_ADDR:-127.0.0.1:18080}; kafka=${KAFKA_ADDR:-127.0.0.1:19092}
# The profiler has its own listener (--debug-listen), only when asked for.
debug=${DEBUG_ADDR:-127.0.0.1:16061}
${PIN_PULSE:+taskset -c "$PIN_PULSE"} "$bin" run --data-dir "$data" --http "$http" --kafka-listen "$kafka" --log-level warn \
  ${PROFILE:+--debug-listen "$debug"} ${PULSE_FLAGS:-} &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data" "$bindir"' EXIT
for _ in $(seq 100); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.2; done

metric() { curl -s "http://$http/metrics" | awk -v m="$1" '$1==m {print $2}'; }
before=$(metric "pulse_pipeline_events_total{pipeline=\"$pl\"}"); before=${before:-0}
start=$(date +%s.%N)
via=(--target "http://$http")
[ "${VIA:-http}" = kafka ] && via=(--brokers "$kafka")
watch=${WATCH-zone_1m}
if [ -n "$watch" ]; then
  curl -sN "http://$http/v1/pipelines/$pl/live?output=$watch" >/dev/null &
  watcher=$!
fi
${PIN_LOADGEN:+taskset -c "$PIN_LOADGEN"} "$bin" loadgen city "${via[@]}" --rate "$rate" --duration "$duration" \
  --sensors "$sensors" --zones "$zones" --concurrency 8 &
lg=$!
# The highest consumer lag seen during the load, sampled twice a second.
lagfile=$(mktemp)
( most=0; while kill -0 $lg 2>/dev/null; do
    l=$(metric "pulse_pipeline_consumer_lag{pipeline=\"$pl\"}" | awk '{printf "%d", $1}')
    [ "${l:-0}" -gt "$most" ] && most=$l && echo "$most" >"$lagfile"; sleep 0.5
  done ) &
snap() { curl -s "http://$http/metrics"; }
# sel METRIC LABELS: the bucket and count lines of one latency histogram.
sel() { grep -E "^pulse_pipeline_$1_(bucket|count)\{pipeline=\"$pl\"$2[,}]"; }
hist() { snap | sel live_latency_seconds ""; }
sleep "${WARMUP:-5}"; warm=$(snap)
[ -n "${PROFILE:-}" ] && curl -s -o "$PROFILE" "http://$debug/debug/pprof/profile?seconds=${PROFILE_SECONDS:-10}" &
wait $lg; steady=$(snap)
[ -n "${watcher:-}" ] && kill "$watcher" 2>/dev/null
# Wait for the pipeline to catch up: the shuffle stage's lag 0 and the
# window stage folded every accepted event into zone_1m, at most 60 s.
for _ in $(seq 300); do
  lag=$(metric "pulse_pipeline_consumer_lag{pipeline=\"$pl\"}")
  acc=$(metric "pulse_pipeline_events_total{pipeline=\"$pl\"}")
  win=$(metric "pulse_window_events_total{output=\"$out\",pipeline=\"$pl\"}")
  nlag=0; [ -n "${NEXT:-}" ] && nlag=$(metric "pulse_pipeline_consumer_lag{pipeline=\"$NEXT\"}")
  [ "${lag:-1}" = "0" ] && [ "${acc:-0}" = "${win:-x}" ] && [ "${nlag:-1}" = "0" ] && break; sleep 0.2
done
end=$(date +%s.%N)
after=$(metric "pulse_window_events_total{output=\"$out\",pipeline=\"$pl\"}")
awk -v a="$after" -v b="$before" -v s="$start" -v e="$end" 'BEGIN {
  printf "pipeline: %d events through both stages in %.1f s (load start until lag 0) = %.0f events/s\n", a-b, e-s, (a-b)/(e-s) }'
if [ -n "${NEXT:-}" ]; then
  n=$(metric "pulse_pipeline_events_total{pipeline=\"$NEXT\"}")
  awk -v n="${n:-0}" -v s="$start" -v e="$end" -v p="$NEXT" 'BEGIN {
    printf "second level %s: %d events read in %.1f s = %.0f events/s\n", p, n, e-s, n/(e-s) }'
fi
# p50/p99 of ingest -> live partial result, from the histogram's buckets
# (upper bound of the bucket holding the quantile); "steady" subtracts the
# counts at the end of the warm-up from those at the end of the load.
quantiles() { awk -v label="$1" '
  FNR == NR { if ($1 ~ /_bucket/) { match($0, /le="[^"]+"/); base[substr($0, RSTART+4, RLENGTH-5)] = $2 } else total0 = $2; next }
  /_bucket/ { match($0, /le="[^"]+"/); le = substr($0, RSTART+4, RLENGTH-5); n++; les[n] = le; cum[n] = $2 - base[le] }
  /_count/ { total = $2 - total0 }
  END {
    if (total <= 0) { printf "ingest -> %s: no samples\n", label; exit }
    for (i = 1; i <= n; i++) { if (!p50 && cum[i] >= 0.5 * total) p50 = les[i]; if (!p99 && cum[i] >= 0.99 * total) p99 = les[i] }
    printf "ingest -> %s, %d samples): p50 <= %s s, p99 <= %s s\n", label, total, p50, p99 }' "$2" "$3"; }
quantiles "live partial latency (whole run" <(echo "# no baseline") <(hist)
quantiles "live partial latency (steady, after ${WARMUP:-5} s of load" <(echo "$warm" | sel live_latency_seconds "") <(echo "$steady" | sel live_latency_seconds "")
# The same steady window at each point on the way (pulse_pipeline_stage_latency_seconds).
for point in shuffle_polled shuffle_committed window_folded; do
  quantiles "$point (steady" <(echo "$warm" | sel stage_latency_seconds ",point=\"$point\"") <(echo "$steady" | sel stage_latency_seconds ",point=\"$point\"")
done
echo "pulse RSS: $(ps -o rss= -p $pid) KiB, peak $(awk '/VmHWM/ {print $2}' /proc/$pid/status) KiB"
# Requests ingest turned away unread (overloaded, consumer lag, broker), by reason.
snap | grep '^pulse_ingest_refused_total' || echo "refused: none"
echo "highest consumer lag during the load: $(cat "$lagfile" 2>/dev/null || echo 0) records"; rm -f "$lagfile"
echo "accepted: $(metric 'pulse_ingest_events_total{outcome="accepted",stream="city"}') events"
# CPU Pulse used from its start (ready) until the pipeline caught up.
awk -v hz="$(getconf CLK_TCK)" -v s="$start" -v e="$end" '{ cpu = ($14 + $15) / hz; printf "pulse CPU: %.1f s (%.2f cores over the load and catch-up)\n", cpu, cpu / (e - s) }' /proc/$pid/stat
