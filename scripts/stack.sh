# Sourced by scripts that need a running gateway: starts Redis, the provider sandbox (calling the
# gateway back) and the gateway with deploy/config/sandbox.toml on free ports, and stops them on exit.
# After `start_stack`: GW, SB, API_KEY, TMP (logs), bin. Env: BIN_DIR (use binaries there, no
# build), KEEP_TMP=1 (keep logs).
set -euo pipefail

API_KEY=sandbox-dev-key
say() { printf '==> %s\n' "$*"; }
die() { printf '%s: FAILED: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# stop_pids PID...: SIGTERM, up to 5 s for them to exit, then SIGKILL. The last one started is
# stopped first (the gateway before the Redis it writes to).
stop_pids() {
  local pids=("$@") i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for _ in $(seq 1 50); do
    local alive=0 pid
    for pid in "${pids[@]}"; do if kill -0 "$pid" 2>/dev/null; then alive=1; fi; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

stack_pids=()
stack_cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  stop_pids "${stack_pids[@]}"
  if [ "$rc" -ne 0 ] && [ -n "${TMP:-}" ]; then
    for log in gateway sandbox redis; do
      if [ -s "$TMP/$log.log" ]; then
        echo "---- last lines of $log.log ----" >&2
        tail -n 15 "$TMP/$log.log" >&2
      fi
    done
  fi
  if [ -n "${TMP:-}" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.2 s.
wait_until() {
  local secs=$1 what=$2
  shift 2
  for _ in $(seq 1 $((secs * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "timed out after ${secs}s waiting for $what"
}

# find_binaries: sets $bin to the folder holding gateway and provider-sandbox: $BIN_DIR when set
# (prebuilt, e.g. a release build), else a debug build made now.
find_binaries() {
  if [ -n "${BIN_DIR:-}" ]; then
    say "using the binaries in $BIN_DIR (BIN_DIR set: no build)"
    bin=$BIN_DIR
  else
    say "building gateway and provider-sandbox"
    cargo build -q --locked -p gateway-http -p provider-sandbox
    bin="${CARGO_TARGET_DIR:-target}/debug"
  fi
  [ -x "$bin/gateway" ] && [ -x "$bin/provider-sandbox" ] || die "binaries not found in $bin"
}

# start_stack [extra gateway env assignments...]
start_stack() {
  scripts/ensure-deps.sh
  find_binaries

  TMP=$(mktemp -d "${TMPDIR:-/tmp}/gateway-stack.XXXXXX")
  trap stack_cleanup INT TERM EXIT
  local redis_port sandbox_port gateway_port
  redis_port=$(free_port)
  sandbox_port=$(free_port)
  gateway_port=$(free_port)
  while [ "$sandbox_port" = "$redis_port" ]; do sandbox_port=$(free_port); done
  while [ "$gateway_port" = "$redis_port" ] || [ "$gateway_port" = "$sandbox_port" ]; do gateway_port=$(free_port); done
  GW="http://127.0.0.1:$gateway_port"
  SB="http://127.0.0.1:$sandbox_port"

  mkdir -p "$TMP/redis"
  redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$TMP/redis" --save "" --appendonly no \
    --maxmemory-policy noeviction --loglevel warning >"$TMP/redis.log" 2>&1 &
  stack_pids+=($!)
  wait_until 10 "redis" redis-cli -p "$redis_port" ping

  SANDBOX_INCS_CALLBACK_URL="$GW/callbacks/incs/sandbox-incs-callback" \
  SANDBOX_INNOPAAS_WEBHOOK_URL="$GW/callbacks/innopaas/sandbox-innopaas-callback" \
    "$bin/provider-sandbox" --listen "127.0.0.1:$sandbox_port" >"$TMP/sandbox.log" 2>&1 &
  stack_pids+=($!)
  wait_until 10 "sandbox" curl -fsS --max-time 1 "$SB/_sandbox/health"

  sed -e "s#http://127.0.0.1:8090#$SB#g" deploy/config/sandbox.toml >"$TMP/gateway.toml"
  env GATEWAY__SERVER__LISTEN="127.0.0.1:$gateway_port" GATEWAY__REDIS__URL="redis://127.0.0.1:$redis_port" \
    LOG_FORMAT=json "$@" "$bin/gateway" --config "$TMP/gateway.toml" >"$TMP/gateway.log" 2>&1 &
  stack_pids+=($!)
  wait_until 20 "gateway readiness" curl -fsS --max-time 1 "$GW/health/ready"
  say "gateway on $GW, sandbox on $SB"
}

# python_tools: a virtualenv under target/ with the pinned PyPI tools of scripts/python-tools.txt.
python_tools() {
  local venv="${CARGO_TARGET_DIR:-target}/pytools"
  local stamp="$venv/.installed"
  if ! [ -f "$stamp" ] || ! cmp -s scripts/python-tools.txt "$stamp"; then
    say "installing the Python tools of scripts/python-tools.txt into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r scripts/python-tools.txt
    cp scripts/python-tools.txt "$stamp"
  fi
  PYTOOLS="$venv/bin"
}
