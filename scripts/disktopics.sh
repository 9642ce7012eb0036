#!/usr/bin/env bash
# Disk use of the topics under load: runs a pulse binary with the city
# simulator's load for 150 s at 20,000 readings/s and prints, every 30 s,
# the size of the changelog and repartition topics, of the whole data dir,
# and Pulse's RSS. Usage: scripts/disktopics.sh [PULSE_BINARY] (default:
# built from this checkout). Data dir on /dev/shm; ports 18080 and 19092.
set -euo pipefail
bin=${1:-}
if [ -z "$bin" ]; then
  bin=$(mktemp -d)/pulse
  go build -o "$bin" ./cmd/pulse
fi
dd=$(mktemp -d /dev/shm/pulse-disk.XXXX)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dd" "$dd.log"' EXIT
"$bin" run --data-dir "$dd" --http 127.0.0.1:18080 --kafka-listen 127.0.0.1:19092 >"$dd.log" 2>&1 &
pid=$!
for i in $(seq 100); do curl -sf 127.0.0.1:18080/readyz >/dev/null && break; [ "$i" = 100 ] && { echo "pulse not ready:"; cat "$dd.log"; exit 1; }; sleep 0.2; done
"$bin" loadgen city --target http://127.0.0.1:18080 --rate 20000 --duration 150s >/dev/null 2>&1 &
for t in 30 60 90 120 150 180; do
  sleep 30
  kib() { du -sk "$@" 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
  echo "t=${t}s changelog_kib=$(kib "$dd"/kafka/partitions/city.*changelog*) repartition_kib=$(kib "$dd"/kafka/partitions/city.*repartition*) datadir_kib=$(kib "$dd") rss_kib=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)"
done
