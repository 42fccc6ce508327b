#!/usr/bin/env bash
# `make bench`: how fast the gateway is, measured against the limits of this machine.
#
# One release build, one Redis and one bench-echo (the HTTP ceiling), on free ports of 127.0.0.1;
# bench/bench.py runs the scenarios (starting a fresh provider sandbox and gateway for each run) and
# writes bench/results/<date>.md and .png. Everything started is stopped on exit or Ctrl-C.
#
# Installs what is missing: redis-server, wrk, Node and npm (apt), matplotlib and redis-py (pip), and the
# peer's BullMQ (npm, pinned by bench/peer/package-lock.json).
# Knobs: BENCH_ROUNDS (3), BENCH_DURATION (10 s per run), BENCH_CONNECTIONS (64), BENCH_THREADS (2),
# BENCH_MEMORY_N (50000), BENCH_QUIET_WAIT (20 s to wait for other load before each run),
# BENCH_NOTES (a markdown file appended to the report's analysis), BENCH_OUT (bench/results),
# BENCH_ONLY (all | urgency: only the search latency and index memory figures, a few minutes |
# idle-claim: only the idle cost with 1,000 accounts and the claim cost with 1,000,000 queued |
# pipeline: only S0, S2, S3 and P1, logged with their CPU per message, no report; BENCH_PERF=1 adds
# perf profiles of the gateway and Redis during one more S3 run),
# BENCH_IDLE_WARMUP (30 s), BENCH_IDLE_WINDOW (300 s: at least `idle_max_ms`),
# BENCH_URGENCY_N (100000 messages stored for them), BENCH_SEARCH_QUERIES (300 per query kind).
set -euo pipefail
cd "$(dirname "$0")/.."

TMP=bench/tmp
OUT=${BENCH_OUT:-bench/results}
mkdir -p "$TMP/redis" "$OUT"

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
scripts/ensure-deps.sh
if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk from the OS packages..." >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null 2>&1 \
    || { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null; }
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "installing Node and npm from the OS packages..." >&2
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null; } \
    || echo "Node is not available: P1 (the Node + BullMQ peer) is skipped" >&2
fi
PEER_DIR=""
if command -v npm >/dev/null 2>&1; then
  # --ignore-scripts: msgpackr's optional native add-on is not built; BullMQ uses its JavaScript path.
  if (cd bench/peer && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null); then
    PEER_DIR="$PWD/bench/peer"
  else
    echo "npm could not install bench/peer: P1 (the Node + BullMQ peer) is skipped" >&2
  fi
fi
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import matplotlib, redis' 2>/dev/null; then
  echo "installing matplotlib and redis (Python) with pip..." >&2
  PIP_BREAK_SYSTEM_PACKAGES=1 "$PYTHON" -m pip install -q --disable-pip-version-check matplotlib redis \
    || DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-matplotlib python3-redis >/dev/null
fi

cargo build --release --locked -p gateway-http -p provider-sandbox
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
BIN="$TARGET_DIR/release"

# Five free ports, chosen by the kernel.
read -r REDIS_PORT SANDBOX_PORT ECHO_PORT GATEWAY_PORT PEER_PORT < <("$PYTHON" - <<'PY'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
)

pids=()
cleanup() {
  trap - INT TERM EXIT
  if [ -n "${runner:-}" ]; then kill -TERM "$runner" 2>/dev/null || true; wait "$runner" 2>/dev/null || true; fi
  # The runner starts (and normally stops) the gateway and the sandbox per run; these are left only
  # if it was killed outright.
  for f in "$TMP/gateway.pid" "$TMP/sandbox.pid" "$TMP/peer.pid"; do
    if [ -f "$f" ]; then kill -TERM "$(cat "$f")" 2>/dev/null || true; rm -f "$f"; fi
  done
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP/redis"  # the AOF of throwaway data (~100 MB after the memory run)
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# AOF on as in production (everysec; S4 switches to always); automatic rewrites off, the runner
# compacts the AOF between runs so no rewrite forks in the middle of a measurement.
rm -rf "$TMP/redis" "$TMP"/perf-*.data* && mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/$TMP/redis" --save "" \
  --appendonly yes --appendfsync everysec --auto-aof-rewrite-percentage 0 \
  --maxmemory-policy noeviction --loglevel warning >"$TMP/redis.log" 2>&1 &
pids+=($!); REDIS_PID=$!
"$BIN/bench-echo" --listen "127.0.0.1:$ECHO_PORT" --workers 2 >"$TMP/echo.log" 2>&1 &
pids+=($!); ECHO_PID=$!

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$REDIS_PORT" "$ECHO_PORT"; do
  for _ in $(seq 1 100); do up "$port" && break; sleep 0.1; done
  up "$port" || { echo "nothing listens on 127.0.0.1:$port; see $TMP/*.log" >&2; exit 1; }
done

# The gateway's bench config: the sandbox.toml API key and one INCS WhatsApp account, with the lane
# and key rates raised so that no rate limit is the bottleneck; no event subscriptions.
cat >"$TMP/gateway.toml" <<TOML
[server]
listen = "127.0.0.1:$GATEWAY_PORT"
workers = 2
shutdown_grace_secs = 5

[redis]
url = "redis://127.0.0.1:$REDIS_PORT"
key_prefix = "gw"
timeout_ms = 2000

[[api_keys]]
name = "bench"
sha256 = "b71cdacf0021ffad7c8e84df5ee7c77ab181f61d7bc3a75198a3a8363cf7b2f9"  # sandbox-dev-key
scopes = ["send", "read", "admin"]
rate_per_second = 1000000

[[accounts]]
name = "incs-whatsapp"
provider = "incs"
rate_per_second = 1000000
burst = 100000
callback_token = "sandbox-incs-callback"
[accounts.incs]
chat_base_url = "http://127.0.0.1:$SANDBOX_PORT"
rcs_base_url = "http://127.0.0.1:$SANDBOX_PORT"
api_base_url = "http://127.0.0.1:$SANDBOX_PORT"
certification_code = "af92196e-0d07-3c1d-a631-a71c5a1b0001"
api_certification_code = "f484bd42-5c2e-3d7a-9b1e-2f3c4d5e0001"
timeout_ms = 10000
channels = ["whatsapp"]

[[senders]]
name = "hk-main"
channel = "whatsapp"
default = true
accounts = ["incs-whatsapp"]
TOML

notes=()
if [ -n "${BENCH_NOTES:-}" ]; then notes=(--notes "$BENCH_NOTES"); fi
"$PYTHON" bench/bench.py --bin-dir "$BIN" --tmp "$TMP" --out "$OUT" --gateway-config "$TMP/gateway.toml" \
  --redis-port "$REDIS_PORT" --sandbox-port "$SANDBOX_PORT" --echo-port "$ECHO_PORT" --gateway-port "$GATEWAY_PORT" \
  --redis-pid "$REDIS_PID" --echo-pid "$ECHO_PID" --peer-port "$PEER_PORT" ${PEER_DIR:+--peer-dir "$PEER_DIR"} \
  --rounds "${BENCH_ROUNDS:-3}" --duration "${BENCH_DURATION:-10}" --connections "${BENCH_CONNECTIONS:-64}" \
  --threads "${BENCH_THREADS:-2}" --memory-n "${BENCH_MEMORY_N:-50000}" --quiet-wait "${BENCH_QUIET_WAIT:-20}" \
  --only "${BENCH_ONLY:-all}" --urgency-n "${BENCH_URGENCY_N:-100000}" \
  --idle-warmup "${BENCH_IDLE_WARMUP:-30}" --idle-window "${BENCH_IDLE_WINDOW:-300}" \
  --search-queries "${BENCH_SEARCH_QUERIES:-300}" "${notes[@]}" &
runner=$!
wait "$runner"
