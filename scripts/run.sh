#!/usr/bin/env bash
# `make run`: Redis (AOF on, noeviction), the provider sandbox and the gateway, wired together with
# deploy/config/sandbox.toml. Ctrl-C stops everything this script started.
#
# Overrides: GATEWAY_PORT (8080), SANDBOX_PORT (8090), REDIS_PORT (6379), REDIS_URL (use an
# existing Redis instead of starting one), PROFILE (debug|release, default debug).
set -euo pipefail
cd "$(dirname "$0")/.."

GATEWAY_PORT=${GATEWAY_PORT:-8080}
SANDBOX_PORT=${SANDBOX_PORT:-8090}
REDIS_PORT=${REDIS_PORT:-6379}
PROFILE=${PROFILE:-debug}
RUN_DIR=.run
mkdir -p "$RUN_DIR/redis"

cargo_flags=()
if [ "$PROFILE" = "release" ]; then cargo_flags+=(--release); fi
cargo build -q "${cargo_flags[@]}" -p gateway-http -p provider-sandbox
bin="target/$PROFILE"

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped."
}
trap cleanup INT TERM EXIT

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

for p in "$GATEWAY_PORT" "$SANDBOX_PORT"; do
  if port_busy "$p"; then echo "port $p is in use; set GATEWAY_PORT / SANDBOX_PORT" >&2; exit 1; fi
done

if [ -z "${REDIS_URL:-}" ]; then
  if port_busy "$REDIS_PORT"; then echo "port $REDIS_PORT is in use; set REDIS_PORT, or REDIS_URL to use that Redis" >&2; exit 1; fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN_DIR/redis" --save "" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction --loglevel warning \
    >"$RUN_DIR/redis.log" 2>&1 &
  pids+=($!)
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  for _ in $(seq 1 100); do
    if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then break; fi
    sleep 0.05
  done
fi

SANDBOX_URL="http://127.0.0.1:$SANDBOX_PORT"
# The sandbox calls the gateway back as the providers would: INCS status callbacks, InnoPaaS webhooks.
SANDBOX_INCS_CALLBACK_URL="http://127.0.0.1:$GATEWAY_PORT/callbacks/incs/sandbox-incs-callback" \
SANDBOX_INNOPAAS_WEBHOOK_URL="http://127.0.0.1:$GATEWAY_PORT/callbacks/innopaas/sandbox-innopaas-callback" \
  "$bin/provider-sandbox" --listen "127.0.0.1:$SANDBOX_PORT" >"$RUN_DIR/sandbox.log" 2>&1 &
pids+=($!)

# The sandbox's address is written into the accounts of a copy of the config.
sed "s#http://127.0.0.1:8090#$SANDBOX_URL#g" deploy/config/sandbox.toml >"$RUN_DIR/gateway.toml"
GATEWAY__SERVER__LISTEN="127.0.0.1:$GATEWAY_PORT" GATEWAY__REDIS__URL="$REDIS_URL" \
  "$bin/gateway" --config "$RUN_DIR/gateway.toml" 2>&1 | tee "$RUN_DIR/gateway.log" &
pids+=($!)

for _ in $(seq 1 100); do
  if curl -fs "http://127.0.0.1:$GATEWAY_PORT/health/ready" >/dev/null 2>&1; then break; fi
  sleep 0.1
done

cat <<TXT

  gateway   http://127.0.0.1:$GATEWAY_PORT      (API; docs at http://127.0.0.1:$GATEWAY_PORT/docs)
  sandbox   $SANDBOX_URL      (recorded provider requests: $SANDBOX_URL/_sandbox/requests)
  redis     $REDIS_URL
  API key   sandbox-dev-key

  Logs in $RUN_DIR/. Ctrl-C stops everything.

TXT
wait -n "${pids[@]}"
