#!/usr/bin/env bash
# services.sh start|stop|env: install (idempotently, pinned versions, from the Go module proxy, npm and
# Debian) and start the servers the tests need, all on loopback:
#   versitygw (S3) :7070, fake-gcs-server (GCS) :4443, Azurite (Azure Blob) :10000, RabbitMQ :5672;
#   and Debian's chromium for the collector's browser test (LAKE_TEST_CHROMIUM).
# `env` prints the environment variables the tests read (eval "$(scripts/services.sh env)").
set -euo pipefail

VERSITYGW_VERSION=v1.8.0
FAKEGCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0

root=${LAKE_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lake-services}
bin=$root/bin
run=$root/run
mkdir -p "$bin" "$run"

log() { echo "services: $*" >&2; }

wait_port() { # host port name
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  log "$3 did not open $1:$2 within 60 s; its log: $run/$3.log"
  tail -n 20 "$run/$3.log" >&2 || true
  return 1
}

alive() { [ -f "$run/$1.pid" ] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

install_go_tool() { # name module version
  local stamp=$bin/.$1-$3
  if [ -x "$bin/$1" ] && [ -f "$stamp" ]; then return 0; fi
  log "installing $2@$3 (a few minutes when the module cache is cold)"
  GOBIN=$bin GOFLAGS=-buildvcs=false go install "$2@$3"
  touch "$stamp"
}

install_azurite() {
  local dir=$root/azurite
  if [ -f "$dir/node_modules/azurite/package.json" ] &&
    grep -q "\"version\": \"$AZURITE_VERSION\"" "$dir/node_modules/azurite/package.json"; then return 0; fi
  command -v npm >/dev/null || { log "npm is needed for Azurite: apt-get install -y nodejs npm"; return 1; }
  log "installing azurite@$AZURITE_VERSION from npm"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2
}

install_rabbitmq() {
  if command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ]; then return 0; fi
  log "installing rabbitmq-server from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq rabbitmq-server >&2
  # Debian starts the service on install; we run our own loopback node.
  (service rabbitmq-server stop || rabbitmqctl stop) >/dev/null 2>&1 || true
}

# Chromium drives the collector's browser test (chromedp, headless). Debian's package; apt runs
# after install_rabbitmq, never beside it (one dpkg lock).
install_chromium() {
  if command -v chromium >/dev/null || [ -x /usr/bin/chromium ]; then return 0; fi
  log "installing chromium from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq chromium >&2 || { apt-get update -qq >&2 || true; apt-get install -y -qq chromium >&2; }
}

azure_key() {
  local f=$root/azurite/node_modules/azurite/dist/src/blob/utils/constants.js
  sed -n 's/.*EMULATOR_ACCOUNT_KEY_STR *= *"\([^"]*\)".*/\1/p' "$f" | head -n 1
}

start() {
  install_go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION" &
  local p1=$!
  install_go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKEGCS_VERSION" &
  local p2=$!
  install_azurite &
  local p3=$!
  { install_rabbitmq && install_chromium; } &
  local p4=$!
  wait $p1; wait $p2; wait $p3; wait $p4

  if ! alive versitygw; then
    mkdir -p "$run/s3data"
    ROOT_ACCESS_KEY=test ROOT_SECRET_KEY=testsecret nohup "$bin/versitygw" --port 127.0.0.1:7070 --quiet \
      posix "$run/s3data" >"$run/versitygw.log" 2>&1 &
    echo $! >"$run/versitygw.pid"
  fi
  if ! alive fake-gcs-server; then
    nohup "$bin/fake-gcs-server" -scheme http -host 127.0.0.1 -port 4443 -public-host 127.0.0.1:4443 \
      -external-url http://127.0.0.1:4443 -backend memory -log-level warn >"$run/fake-gcs-server.log" 2>&1 &
    echo $! >"$run/fake-gcs-server.pid"
  fi
  if ! alive azurite; then
    (cd "$root/azurite" && nohup node node_modules/azurite/dist/src/blob/main.js --blobHost 127.0.0.1 \
      --blobPort 10000 --inMemoryPersistence --extentMemoryLimit 512 --skipApiVersionCheck --loose \
      --disableTelemetry --silent >"$run/azurite.log" 2>&1 & echo $! >"$run/azurite.pid")
  fi
  if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1 rabbitmq-server -detached >"$run/rabbitmq.log" 2>&1 || true
  fi
  wait_port 127.0.0.1 7070 versitygw
  wait_port 127.0.0.1 4443 fake-gcs-server
  wait_port 127.0.0.1 10000 azurite
  wait_port 127.0.0.1 5672 rabbitmq
  log "all servers up"
}

stop() {
  local s
  for s in versitygw fake-gcs-server azurite; do
    if alive "$s"; then kill "$(cat "$run/$s.pid")" 2>/dev/null || true; fi
    rm -f "$run/$s.pid"
  done
  rabbitmqctl stop >/dev/null 2>&1 || true
}

env_vars() {
  cat <<ENV
export LAKE_TEST_S3_URL='s3://lake-test?endpoint=http://127.0.0.1:7070&use_path_style=true&region=us-east-1'
export LAKE_TEST_GCS_URL='gs://lake-test'
export LAKE_TEST_AZURE_URL='azblob://lake-test?protocol=http&domain=127.0.0.1:10000'
export LAKE_TEST_AMQP_URL='amqp://guest:guest@127.0.0.1:5672/'
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=testsecret AWS_REGION=us-east-1
export STORAGE_EMULATOR_HOST=127.0.0.1:4443
export AZURE_STORAGE_ACCOUNT=devstoreaccount1
export AZURE_STORAGE_KEY='$(azure_key)'
export RABBIT_SERVER_URL='amqp://guest:guest@127.0.0.1:5672/'
export LAKE_TEST_CHROMIUM=/usr/bin/chromium
ENV
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  env) env_vars ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
