#!/usr/bin/env bash
# Idle RSS against the size of the data dir: fills a fresh data dir through
# the embedded broker's Kafka port (RATE readings/s for DURATION, default
# 300000 and 120s, no size retention), then restarts Pulse on it and prints
# the data dir's size and Pulse's RSS 30 s and 150 s after the restart
# (after Go's forced collection every 2 minutes), and the live heap after a
# collection (through --debug-listen 127.0.0.1:16060), while idle.
# Usage: scripts/rssdata.sh [RATE] [DURATION]. Data dir under $TMPDIR
# (default /tmp); ports 18080 and 19092.
set -euo pipefail
rate=${1:-300000}
duration=${2:-120s}
bin=$(mktemp -d)/pulse
go build -o "$bin" ./cmd/pulse
dd=$(mktemp -d "${TMPDIR:-/tmp}/pulse-rss.XXXX")
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dd" "$dd.log" "$(dirname "$bin")"' EXIT
start() {
  "$bin" run --data-dir "$dd" --http 127.0.0.1:18080 --kafka-listen 127.0.0.1:19092 --retention-bytes 0 "$@" >>"$dd.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do curl -sf 127.0.0.1:18080/readyz >/dev/null && return; sleep 0.2; done
  echo "pulse not ready"; exit 1
}
start
"$bin" loadgen city --brokers 127.0.0.1:19092 --rate "$rate" --duration "$duration" --quiet
sleep 10
echo "after load: data dir $(du -sh "$dd" | cut -f1), RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"
kill $pid; wait $pid || true
start --debug-listen 127.0.0.1:16060
sleep 30
echo "30 s after restart: data dir $(du -sh "$dd" | cut -f1), RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status), HWM $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$pid/status)"
sleep 120
echo "150 s after restart: RSS $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$pid/status)"
echo "live heap after a collection: $(go tool pprof -top 'http://127.0.0.1:16060/debug/pprof/heap?gc=1' 2>/dev/null | awk '/^Showing nodes/ {print $(NF-1)}')"
