# shellcheck shell=bash
# Shared by the deploy/local scripts: where things live and how to start each service.
# Everything runs on loopback on non-default ports; data lives under .dev/ in the repo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV="$ROOT/.dev"
LOGS="$DEV/logs"
RUN="$DEV/run"
PG_PORT=${SEATQ_PG_PORT:-55432}
REDIS_PORT=${SEATQ_REDIS_PORT:-56379}
BROKER_PORT=${SEATQ_BROKER_PORT:-59092}
# The tests' own broker, started empty for every test run (its database is recreated), so
# no run reads another's topics.
TEST_BROKER_PORT=${SEATQ_TEST_BROKER_PORT:-59093}
GATEWAY_PORT=${SEATQ_GATEWAY_PORT:-58080}
PG_BIN=${SEATQ_PG_BIN:-/usr/lib/postgresql/15/bin}
# Outside the clone, so every clone on this machine (and CI's) reuses one build.
SEATQ_CACHE=${SEATQ_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/seatq}
NISSHI_VERSION=0.8.1
NISSHI_BIN=${SEATQ_NISSHI_BIN:-$SEATQ_CACHE/nisshi-$NISSHI_VERSION/bin/nisshi}
# The broker keeps its log in PostgreSQL: these databases of the stack's own cluster.
BROKER_DB=nisshi
TEST_BROKER_DB=nisshi_test
SCHEMATHESIS_VERSION=4.32.5
SCHEMATHESIS_BIN=${SEATQ_SCHEMATHESIS_BIN:-$SEATQ_CACHE/schemathesis-$SCHEMATHESIS_VERSION/bin/st}
KUBERNETES_VALIDATE_VERSION=1.37.0
KUBERNETES_VALIDATE_BIN=${SEATQ_KUBERNETES_VALIDATE_BIN:-$SEATQ_CACHE/kubernetes-validate-$KUBERNETES_VALIDATE_VERSION/bin/kubernetes-validate}

export DATABASE_URL="postgres://seatq@127.0.0.1:$PG_PORT/seatq"
export SEATQ_DATABASE__URL="$DATABASE_URL"
export SEATQ_REDIS__URL="redis://127.0.0.1:$REDIS_PORT/"
export SEATQ_KAFKA__BROKERS="127.0.0.1:$BROKER_PORT"
export SEATQ_NISSHI_BIN="$NISSHI_BIN"
export SEATQ_SCHEMATHESIS_BIN="$SCHEMATHESIS_BIN"
export SEATQ_KUBERNETES_VALIDATE_BIN="$KUBERNETES_VALIDATE_BIN"

# Each step says how long the script has run, so a slow phase shows in CI's log.
say() { printf '\033[1m==> [%4d s] %s\033[0m\n' "$SECONDS" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

mkdir -p "$LOGS" "$RUN"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages for PostgreSQL and Redis, if missing.
ensure_packages() {
  local missing=()
  [ -x "$PG_BIN/postgres" ] || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v pg_isready >/dev/null || missing+=(postgresql-client)
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (Debian packages)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Debian starts its own default cluster/server on install; seatq runs private ones.
}

# Headless Chromium and its WebDriver (Debian packages) for the browser tests.
ensure_browser() {
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing chromium and chromium-driver (Debian packages, for the browser tests)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

# nisshi, the Kafka-protocol broker (crates.io), built once per machine (about 15 minutes
# on two free cores, 2 GB of memory). Only rama 0.4.0 and its split crates declare
# rust-version 1.96; they compile on 1.95, hence --ignore-rust-version.
ensure_nisshi() {
  [ -x "$NISSHI_BIN" ] && return 0
  mkdir -p "$SEATQ_CACHE"
  say "building the nisshi $NISSHI_VERSION broker into $SEATQ_CACHE (first time only, ~15 min)"
  (
    flock 9
    [ -x "$NISSHI_BIN" ] || cargo install "nisshi@$NISSHI_VERSION" --locked --ignore-rust-version \
      --root "$SEATQ_CACHE/nisshi-$NISSHI_VERSION" >"$SEATQ_CACHE/nisshi-install.log" 2>&1 \
      || { tail -30 "$SEATQ_CACHE/nisshi-install.log" >&2; exit 1; }
  ) 9>"$SEATQ_CACHE/nisshi-install.lock"
}

# Python 3 from Debian (if missing): tests run docs/lottery/verify_lottery.py with it, as
# anyone checking a lottery would.
ensure_python3() {
  if ! command -v python3 >/dev/null; then
    say "installing python3 (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 >/dev/null
  fi
  PYTHON3_BIN=$(command -v python3)
}

# schemathesis (PyPI), the OpenAPI fuzzer gateway/tests/schemathesis.rs runs, in a venv
# under the machine-wide cache (python3 and its venv module from Debian if missing).
# A Python tool from PyPI in its own venv in the machine cache: ensure_pip_tool package version bin
ensure_pip_tool() {
  local package=$1 version=$2 bin=$3
  [ -x "$bin" ] && return 0
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "installing python3 and python3-venv (Debian packages, for $package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  mkdir -p "$SEATQ_CACHE"
  say "installing $package $version into $SEATQ_CACHE (first time only)"
  (
    flock 9
    local venv="$SEATQ_CACHE/$package-$version"
    [ -x "$bin" ] || {
      rm -rf "$venv" &&
        python3 -m venv "$venv" &&
        "$venv/bin/pip" install -q "$package==$version"
    } >"$SEATQ_CACHE/$package-install.log" 2>&1 \
      || { tail -30 "$SEATQ_CACHE/$package-install.log" >&2; exit 1; }
  ) 9>"$SEATQ_CACHE/$package-install.lock"
}

ensure_schemathesis() { ensure_pip_tool schemathesis "$SCHEMATHESIS_VERSION" "$SCHEMATHESIS_BIN"; }

# Validates the Kubernetes manifests against the API schemas it bundles (no cluster).
ensure_kubernetes_validate() {
  ensure_pip_tool kubernetes-validate "$KUBERNETES_VALIDATE_VERSION" "$KUBERNETES_VALIDATE_BIN"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name [seconds]
  local deadline=$((SECONDS + ${3:-60}))
  until port_open "$1"; do
    [ $SECONDS -lt "$deadline" ] || die "$2 did not open port $1; see $LOGS"
    sleep 0.2
  done
}

pid_alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
pg_user_run() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local data="$DEV/pg"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    if [ "$(id -u)" -eq 0 ]; then
      chown postgres:postgres "$data"
      # The postgres user must be able to reach .dev/ (a clone under a private temp dir
      # may not let it): grant traverse-only permission on the way down.
      local dir="$data"
      while dir=$(dirname "$dir") && [ "$dir" != / ]; do
        runuser -u postgres -- test -x "$dir" 2>/dev/null || chmod o+x "$dir"
      done
    fi
    pg_user_run "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >"$LOGS/initdb.log"
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
fsync = on
synchronous_commit = on
max_connections = 400
shared_buffers = 512MB
max_wal_size = 4GB
log_min_duration_statement = 2000
CONF
  fi
  if ! port_open "$PG_PORT"; then
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
    touch "$LOGS/postgres.log"
    [ "$(id -u)" -eq 0 ] && chown postgres "$LOGS/postgres.log"
    pg_user_run "$PG_BIN/pg_ctl" -D "$data" -l "$LOGS/postgres.log" -w -t 60 start >/dev/null
  fi
  wait_port "$PG_PORT" PostgreSQL
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qtAc \
    "SELECT 1 FROM pg_roles WHERE rolname = 'seatq'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE ROLE seatq LOGIN SUPERUSER"
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'seatq'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -qc "CREATE DATABASE seatq OWNER seatq"
}

start_redis() {
  mkdir -p "$DEV/redis"
  if ! port_open "$REDIS_PORT"; then
    say "starting Redis on 127.0.0.1:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DEV/redis" \
      --appendonly yes --appendfsync everysec --save "" \
      --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$LOGS/redis.log"
  fi
  wait_port "$REDIS_PORT" Redis
}

# A nisshi broker named NAME (pid in .dev/run/NAME.pid, log in .dev/logs/NAME.log) on PORT,
# keeping its log in database DB of the stack's PostgreSQL (it creates its schema itself).
# `fresh` drops the database first: an empty broker.
start_nisshi() { # name port db [fresh]
  local name=$1 port=$2 db=$3 fresh=${4:-}
  port_open "$port" && return 0
  local admin="postgres://seatq@127.0.0.1:$PG_PORT/postgres"
  if [ "$fresh" = fresh ]; then
    PGOPTIONS='-c client_min_messages=warning' \
      psql "$admin" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
  fi
  psql "$admin" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 ||
    psql "$admin" -qc "CREATE DATABASE \"$db\" OWNER seatq" >/dev/null
  say "starting the nisshi broker on 127.0.0.1:$port (its log in PostgreSQL database $db)"
  # The subshell records its own pid, then becomes the broker (exec), so the pid file names
  # the broker itself. A consumer group's first rebalance waits a moment for more members
  # (Kafka's group.initial.rebalance.delay.ms, 3 s by default); half a second is enough for
  # processes started together on one machine.
  (echo "$BASHPID" >"$RUN/$name.pid" &&
    RUST_LOG=${NISSHI_LOG:-warn} exec nohup "$NISSHI_BIN" broker \
      --storage-engine "postgres://seatq@127.0.0.1:$PG_PORT/$db" \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --group-initial-rebalance-delay "${SEATQ_GROUP_INITIAL_REBALANCE_DELAY:-500ms}" \
      >>"$LOGS/$name.log" 2>&1) &
  wait_port "$port" "nisshi ($name)" 60
}

start_broker() { start_nisshi broker "$BROKER_PORT" "$BROKER_DB"; }

start_infra() {
  ensure_packages
  ensure_nisshi
  start_postgres
  start_redis
  start_broker
}

# Brokers of this stack (by the databases they keep their log in), whatever their pid files say.
stop_stray_brokers() {
  local pid
  for pid in $(pgrep -f "$NISSHI_BIN broker" || true); do
    case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
      *":$PG_PORT/$BROKER_DB "* | *":$PG_PORT/$TEST_BROKER_DB "*) kill "$pid" 2>/dev/null || true ;;
    esac
  done
}

stop_pidfile() { # name
  if pid_alive "$1"; then
    kill "$(cat "$RUN/$1.pid")" 2>/dev/null || true
    for _ in $(seq 50); do pid_alive "$1" || break; sleep 0.1; done
    pid_alive "$1" && kill -9 "$(cat "$RUN/$1.pid")" 2>/dev/null || true
  fi
  rm -f "$RUN/$1.pid"
}

# Start a seatq service of the local stack from a built binary unless it runs:
# start_seatq NAME BINARY ARGS...  (the tests configure their own services instead)
start_seatq() {
  local name=$1 bin=$2
  shift 2
  pid_alive "$name" && return 0
  [ -x "$bin" ] || die "$bin is missing: run deploy/local/up first"
  SEATQ_CONFIG="$ROOT/deploy/local/seatq.toml" \
    SEATQ_GATEWAY__LISTEN="127.0.0.1:$GATEWAY_PORT" \
    SEATQ_GATEWAY__PUBLIC_URL="http://127.0.0.1:$GATEWAY_PORT" \
    nohup "$bin" "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  # A service that exits at once (a stale build refusing newer migrations, a bad config)
  # must fail loudly here, not leave the stack half up.
  sleep 1
  pid_alive "$name" || { tail -5 "$LOGS/$name.log" >&2; die "$name exited right after starting; see $LOGS/$name.log"; }
}
