#!/usr/bin/env bash
# bench-reads.sh: the read APIs under load from a second process on loopback, and the time from a
# committed retrain to the API serving it.
#
# Builds lake; generates INTERACTIONS events (default 300,000; 10,000 users, 5,000 items, 7 days)
# and ingests them; runs `lake als` and `lake trending` into an outputs prefix; starts `lake serve
# --outputs PREFIX --rate-limit 0` (the default --outputs-poll, 3 s); then drives wrk (Debian's wrk;
# installed if missing) at similar items and at recommendations, each spread over random ids by a
# Lua script, DURATION long (default 10s) in two ways:
#   - paced: CONNS connections (default 60), each waiting PACE_MS (default 10) ms between an
#     answer and its next request, so the rate is CONNS/(PACE_MS + latency): about 5,000
#     requests per second with answers of 1-2 ms. wrk has no open-loop mode: when the server
#     falls behind, the rate drops instead of a queue growing, so read the achieved rate too;
#   - flat out: 32 connections, no pause, to see the ceiling.
# wrk runs one thread, so the server keeps most of the two cores. Last, it retrains (`lake als
# --force --seed 2`) while a loop polls the Lake-Version header of one similar-items answer every
# 20 ms, and prints the time from the new similar_items commit (its commit timestamp) to the
# first answer from it, and from the registration to it.
# Usage: [INTERACTIONS=N] [DURATION=10s] [CONNS=60] [PACE_MS=10] scripts/bench-reads.sh
set -euo pipefail
cd "$(dirname "$0")/.."
interactions=${INTERACTIONS:-300000}
users=10000
items=5000
duration=${DURATION:-10s}
conns=${CONNS:-60}
pace=${PACE_MS:-10}
addr=127.0.0.1:18090
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq wrk; }; }
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/lake" ./cmd/lake
lake() { "$work/lake" "$@"; }
now() { date +%s.%N; }

lake gen --out "$work/gen" --users $users --items $items --days 7 --interactions "$interactions" --seed 1
lake create "$work/events" --schema interactions >/dev/null
for f in retail.csv app.json clicks.ndjson; do
  lake ingest "$work/events" "$work/gen/$f" --mapping "$work/gen/mappings/${f%%.*}.json" | tail -1
done
lake als --source "$work/events" --output "$work/out" --factors 32 --iterations 5 2>/dev/null
lake trending --source "$work/events" --output "$work/out" --window 1h 2>/dev/null | tail -1

"$work/lake" serve --table "$work/events" --outputs "$work/out" --addr $addr --rate-limit 0 >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q 'read APIs' "$work/serve.log" && break; sleep 0.1; done
grep 'read APIs' "$work/serve.log" || { cat "$work/serve.log"; exit 1; }

# One Lua script per endpoint: a random id per request, an optional pause per connection.
lua() { # lua FILE PATH_PREFIX N PATH_SUFFIX PAUSE_MS
  cat >"$1" <<EOF
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "$2" .. math.random(0, $3 - 1) .. "$4")
end
function delay() return $5 end
EOF
}
echo "load: $(uptime)"
for ep in similar recommendations; do
  case $ep in
  similar) args=(/v1/items/i $items /similar?k=20) ;;
  recommendations) args=(/v1/users/u $users /recommendations?k=10) ;;
  esac
  lua "$work/paced.lua" "${args[@]}" "$pace"
  lua "$work/flat.lua" "${args[@]}" 0
  echo "== $ep, paced: $conns connections x 1 request per ${pace} ms"
  wrk -t1 -c"$conns" -d"$duration" --latency -s "$work/paced.lua" "http://$addr" | grep -E 'Requests/sec|Non-2xx|^ +(50|75|90|99)%|Latency  |requests in'
  echo "== $ep, flat out: 32 connections"
  wrk -t1 -c32 -d"$duration" --latency -s "$work/flat.lua" "http://$addr" | grep -E 'Requests/sec|Non-2xx|^ +(50|75|90|99)%|Latency  |requests in'
done
curl -s "http://$addr/metrics" | grep -E '^lake_read_(requests_total|recommendation_source_total|served_version)' | grep -v ' 0$' || true

# Retrain to serving: poll the version one answer comes from while lake als runs again.
v0=$(curl -s -D - -o /dev/null "http://$addr/v1/items/i1/similar" | tr -d '\r' | sed -n 's/^Lake-Version: //p')
(
  while :; do
    v=$(curl -s -D - -o /dev/null "http://$addr/v1/items/i1/similar" | tr -d '\r' | sed -n 's/^Lake-Version: //p')
    if [ -n "$v" ] && [ "$v" != "$v0" ]; then echo "$(now) $v" >"$work/served"; break; fi
    sleep 0.02
  done
) &
poller=$!
lake als --source "$work/events" --output "$work/out" --factors 32 --iterations 5 --seed 2 --force --gate-tolerance 1 2>/dev/null | grep -E 'registered|similar_items'
registered=$(now)
wait $poller
read -r served v1 <"$work/served"
committed=$(lake history "$work/out/similar_items" --format jsonl --limit 1 | sed -n 's/.*"timestamp":\([0-9]*\).*"version":\([0-9]*\)}$/\1/p')
awk -v s="$served" -v c="$committed" -v r="$registered" -v v0="$v0" -v v1="$v1" 'BEGIN {
  printf "retrain to serving: similar_items v%s -> v%s served %.2f s after its commit, %.2f s after lake als returned (registered live; poll 3 s)\n", v0, v1, s - c/1000, s - r }'
