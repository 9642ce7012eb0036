#!/usr/bin/env bash
# End-to-end load test: builds pulse, starts `pulse run` on free ports with a
# fresh data dir, drives it with `pulse loadgen city` over HTTP, and reports
# ingest and pipeline throughput from /metrics. Usage:
#   scripts/loadtest.sh [rate=100000] [duration=30s] [sensors=10000] [zones=100]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-100000}; duration=${2:-30s}; sensors=${3:-10000}; zones=${4:-100}
bin=$(mktemp -d)/pulse
go build -o "$bin" ./cmd/pulse
data=$(mktemp -d)
http=127.0.0.1:18080; kafka=127.0.0.1:19092
"$bin" run --data-dir "$data" --http "$http" --kafka-listen "$kafka" --log-level warn &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -sf "http://$http/readyz" >/dev/null && break; sleep 0.2; done

metric() { curl -s "http://$http/metrics" | awk -v m="$1" '$1==m {print $2}'; }
before=$(metric 'pulse_pipeline_events_total{pipeline="city"}'); before=${before:-0}
start=$(date +%s.%N)
"$bin" loadgen city --target "http://$http" --rate "$rate" --duration "$duration" \
  --sensors "$sensors" --zones "$zones" --concurrency 8
# Wait for the pipeline to catch up (lag 0), at most 60 s.
for _ in $(seq 300); do
  lag=$(metric 'pulse_pipeline_consumer_lag{pipeline="city"}')
  [ "${lag:-1}" = "0" ] && break; sleep 0.2
done
end=$(date +%s.%N)
after=$(metric 'pulse_pipeline_events_total{pipeline="city"}')
awk -v a="$after" -v b="$before" -v s="$start" -v e="$end" 'BEGIN {
  printf "pipeline: %d events in %.1f s (load start until lag 0) = %.0f events/s\n", a-b, e-s, (a-b)/(e-s) }'
curl -s "http://$http/metrics" | grep -E '^pulse_ingest_request_duration_seconds_(sum|count)' | sed 's/^/  /' 
echo "pulse RSS: $(ps -o rss= -p $pid) KiB"
