#!/usr/bin/env bash
# Idle CPU and sporadic-traffic decision latency of a fresh nisshi stack under env overrides.
# usage: idle.sh LABEL  (overrides come from the environment, e.g. SEATQ_KAFKA__PARTITIONS=4)
set -uo pipefail
L=$1; OUT=/tmp/cmp/idle-$L; mkdir -p $OUT
cd /work/main
source deploy/local/lib.sh
for svc in gateway scheduler consumer test-broker; do stop_pidfile "$svc"; done
stop_pidfile broker; stop_stray_brokers; pkill -f 'tansu broker' || true
start_postgres; start_redis
admin="postgres://seatq@127.0.0.1:$PG_PORT/postgres"
psql "$admin" -qc "DROP DATABASE IF EXISTS seatq WITH (FORCE)"
redis-cli -p $REDIS_PORT flushall >/dev/null
start_nisshi broker "$BROKER_PORT" "$BROKER_DB" fresh
deploy/local/up > $OUT/up.log 2>&1 || { echo "up failed"; tail $OUT/up.log; exit 1; }
BENCH=/work/main/target/release/bench
sleep 30
Q="SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = 'nisshi'"
x0=$(psql "$admin" -Atc "$Q")
$BENCH idle --secs 30 --root /work/main | tr -d ' \n' > $OUT/idle.json
x1=$(psql "$admin" -Atc "$Q")
echo "$L idle: $(cat $OUT/idle.json) nisshi_xact_per_s=$(( (x1 - x0) / 30 ))"
$BENCH latency --rate 2 --latency-secs 30 --results-dir $OUT/res > $OUT/latency.log 2>&1
grep -E "half|latency|p50" $OUT/latency.log | head -8
