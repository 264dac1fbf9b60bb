#!/usr/bin/env bash
# One broker's turn of the Tansu-vs-nisshi comparison: a fresh stack on that broker, then
# idle CPU, broker stage, accept+drain at several sizes, pipeline closed loop.
set -uo pipefail
B=$1; shift
SIZES=${SIZES:-"50000 200000"}
OUT=/tmp/cmp/${LABEL:-$B}; mkdir -p $OUT
cd /work/main
source deploy/local/lib.sh
for svc in gateway scheduler consumer test-broker; do stop_pidfile "$svc"; done
stop_pidfile broker; stop_stray_brokers; pkill -f 'tansu broker' || true
start_postgres; start_redis
admin="postgres://seatq@127.0.0.1:$PG_PORT/postgres"
psql "$admin" -qc "DROP DATABASE IF EXISTS seatq WITH (FORCE)" 
redis-cli -p $REDIS_PORT flushall >/dev/null
if [ "$B" = tansu ]; then
  rm -rf /tmp/cmp/tansu-data; mkdir -p /tmp/cmp/tansu-data
  (cd /tmp/cmp/tansu-data && echo "$BASHPID" >"$RUN/broker.pid" &&
    RUST_LOG=warn exec nohup /root/.cache/seatq/tansu-0.6.0/bin/tansu broker \
      --storage-engine sqlite://tansu.db --listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" >>"$LOGS/broker.log" 2>&1) &
  wait_port "$BROKER_PORT" tansu 60
elif [ "$B" = nisshi-own ]; then
  # A second cluster of its own, same settings as the stack's.
  if [ ! -f /tmp/cmp/pg2/PG_VERSION ]; then
    mkdir -p /tmp/cmp/pg2 && chown postgres /tmp/cmp/pg2 && chmod o+x /tmp/cmp
    runuser -u postgres -- $PG_BIN/initdb -D /tmp/cmp/pg2 -U postgres --auth=trust -E UTF8 >/dev/null
    printf "listen_addresses = '127.0.0.1'\nport = 55433\nunix_socket_directories = ''\nfsync = on\nsynchronous_commit = on\nmax_connections = 100\nshared_buffers = 512MB\nmax_wal_size = 4GB\n" >> /tmp/cmp/pg2/postgresql.conf
  fi
  port_open 55433 || runuser -u postgres -- $PG_BIN/pg_ctl -D /tmp/cmp/pg2 -l /tmp/cmp/pg2/server.log -w start
  psql postgres://postgres@127.0.0.1:55433/postgres -qc "DROP DATABASE IF EXISTS nisshi WITH (FORCE)" -c "CREATE DATABASE nisshi"
  (echo "$BASHPID" >"$RUN/broker.pid" && RUST_LOG=warn exec nohup "$NISSHI_BIN" broker \
      --storage-engine "postgres://postgres@127.0.0.1:55433/nisshi" \
      --listener-url "tcp://127.0.0.1:$BROKER_PORT" --advertised-listener-url "tcp://127.0.0.1:$BROKER_PORT" \
      --group-initial-rebalance-delay 500ms >>"$LOGS/broker.log" 2>&1) &
  wait_port "$BROKER_PORT" nisshi 60
else
  if [ "$B" = nisshi-async ]; then
    psql "$admin" -qc "DROP DATABASE IF EXISTS $BROKER_DB WITH (FORCE)" -c "CREATE DATABASE $BROKER_DB OWNER seatq" -c "ALTER DATABASE $BROKER_DB SET synchronous_commit = off"
    start_nisshi broker "$BROKER_PORT" "$BROKER_DB"
  else
    start_nisshi broker "$BROKER_PORT" "$BROKER_DB" fresh
  fi
fi
deploy/local/up > $OUT/up.log 2>&1 || { echo "up failed"; tail $OUT/up.log; exit 1; }
BENCH=/work/main/target/release/bench
sleep 30
[ -n "${SKIP_IDLE:-}" ] || $BENCH idle --secs 30 --root /work/main > $OUT/idle.json 2>&1; cat $OUT/idle.json 2>/dev/null || true
if [ -z "${SKIP_BROKER:-}" ]; then
  $BENCH stage broker --attempts 200000 --users 20000 --results-dir $OUT/res-broker > $OUT/broker.log 2>&1; tail -15 $OUT/broker.log
  $BENCH stage broker --attempts 200000 --users 20000 --headers ${HEADERS:-per-command} --results-dir $OUT/res-broker-h > $OUT/broker-h.log 2>&1; tail -15 $OUT/broker-h.log
fi
for n in $SIZES; do
  $BENCH stage gateway-accept --attempts $n --users $((n/5)) --results-dir $OUT/res-drain-$n > $OUT/drain-$n.log 2>&1; tail -15 $OUT/drain-$n.log
done
$BENCH pipeline --attempts ${PIPE_ATTEMPTS:-100000} --users 20000 --results-dir $OUT/res-pipeline > $OUT/pipeline.log 2>&1; tail -25 $OUT/pipeline.log
[ -n "${SKIP_PACK1:-}" ] || [ "$B" != nisshi ] || { $BENCH stage broker --attempts 200000 --users 20000 --pack 1 --results-dir $OUT/res-broker-pack1 > $OUT/broker-pack1.log 2>&1; tail -15 $OUT/broker-pack1.log; $BENCH stage broker --attempts 200000 --users 20000 --pack 1 --headers --results-dir $OUT/res-broker-pack1h > $OUT/broker-pack1h.log 2>&1; tail -15 $OUT/broker-pack1h.log; }
echo DONE
