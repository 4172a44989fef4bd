#!/bin/bash
# kill -9 a `lake trending --follow` at random points while 30 chunks of a generated file are
# ingested, restart it each time, then compare its outputs with a batch run, row for row.
#
#   go build -o /tmp/lake ./cmd/lake && mkdir -p /tmp/k9 && cd /tmp/k9 &&
#   /tmp/lake gen --out gen --items 600 --users 2000 --days 5 --interactions 60000 --seed 4 &&
#   LAKE=/tmp/lake bash /path/to/jobs/trending/testdata/kill9.sh
set -u
L=${LAKE:-lake}
rm -rf events events_quarantine out ref chunks follow.log; mkdir chunks
tail -n +2 gen/retail.csv > body.csv
split -n l/30 -d -a 2 body.csv chunks/c
for f in chunks/c*; do (echo "uid,product,action,ts"; cat $f) > $f.csv; rm $f; done
$L create events --schema interactions --partition-by event_date >/dev/null
$L ingest events chunks/c00.csv --mapping gen/mappings/retail.json >/dev/null 2>&1
start_follower() { $L trending --source events --output out --follow --poll 200ms --allowed-lateness 6h >>follow.log 2>&1 & FPID=$!; }
start_follower
kills=0
for f in chunks/c*.csv; do
  [ "$f" = chunks/c00.csv ] && continue
  $L ingest events $f --mapping gen/mappings/retail.json >/dev/null 2>&1 &
  IP=$!
  sleep 0.$((RANDOM % 5))
  if [ $((RANDOM % 3)) -eq 0 ]; then kill -9 $FPID; wait $FPID 2>/dev/null; kills=$((kills+1)); start_follower; fi
  wait $IP
done
sleep 3
kill -INT $FPID; wait $FPID
echo "kills: $kills"
$L trending --source events --output ref --allowed-lateness 6h
for t in popular trending; do
  $L cat out/$t --format jsonl | sort > f_$t.txt
  $L cat ref/$t --format jsonl | sort > b_$t.txt
  echo "$t: follow $(wc -l < f_$t.txt) rows, batch $(wc -l < b_$t.txt) rows, diff lines: $(diff f_$t.txt b_$t.txt | wc -l)"
done
grep -c "from the checkpoint" follow.log; grep -c "full scan\|following .* from version" follow.log
$L history out/trending --format jsonl | wc -l
