#!/usr/bin/env bash
# bench-collector.sh [QUEUE]: the collector under load from a second process on loopback.
# Starts `lake serve` on a fresh local table (QUEUE: mem://bench, the default, or rabbit://NAME
# with RabbitMQ up: scripts/services.sh start), drives /p.gif with wrk (Debian's wrk; installed if
# missing) for 10 s on 16 connections, waits for the committer, and prints wrk's latency
# distribution and the rows committed. Usage: scripts/bench-collector.sh [mem://bench|rabbit://NAME]
set -euo pipefail
cd "$(dirname "$0")/.."
queue=${1:-mem://bench}
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
eval "$(scripts/services.sh env)"
work=$(mktemp -d)
go build -o "$work/lake" ./cmd/lake
"$work/lake" create "$work/events" --schema interactions >/dev/null
"$work/lake" serve --table "$work/events" --queue "$queue" --addr 127.0.0.1:18089 --rate-limit 0 >"$work/serve.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/18089) 2>/dev/null && break; sleep 0.1; done
wrk -t1 -c16 -d10s --latency 'http://127.0.0.1:18089/p.gif?u=user-1&i=item-2&t=view' | tee "$work/wrk.txt"
sent=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$work/wrk.txt")
start=$(date +%s.%N)
for _ in $(seq 1 100); do
  n=$("$work/lake" describe "$work/events" --format json | sed -n 's/.*"numRecords": *\([0-9]*\).*/\1/p')
  [ "${n:-0}" -ge "$sent" ] && break
  sleep 0.1
done
echo "committed: ${n:-0} of $sent answered requests, $(awk -v a="$(date +%s.%N)" -v b="$start" 'BEGIN{printf "%.2f", a-b}') s after the load stopped"
