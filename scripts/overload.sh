#!/usr/bin/env bash
# `make overload`: 1,000 connections sending `POST /v1/messages` for 10 s to a release build of the
# gateway, while the provider sandbox calls it back for what it accepted. Two runs: the dev key as
# configured (its own rate limit answers most sends with 429), then the key's limit lifted so that
# the instance's admission budget is what refuses. Writes bench/results/<date>-overload.md.
#
# What it checks is the promise of admission control: no callback refused, every refused send
# answered fast (p99) with Retry-After, and no 5xx other than 503.
# Knobs: OVERLOAD_CONNECTIONS (1000), OVERLOAD_SECS (10), OVERLOAD_SETTLE (15 s for the sandbox's
# last callbacks after the load), BIN_DIR (release binaries there: no build), OVERLOAD_MAX_IN_FLIGHT
# (the API budget, `admission.max_in_flight`; default: as deploy/config/sandbox.toml has it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

CONNECTIONS=${OVERLOAD_CONNECTIONS:-1000}
SECS=${OVERLOAD_SECS:-10}
SETTLE=${OVERLOAD_SETTLE:-15}
OUT=bench/results
STAMP=$(date -u +%Y-%m-%d-%H%M)
REPORT="$OUT/$STAMP-overload.md"
mkdir -p "$OUT"

if [ -z "${BIN_DIR:-}" ]; then
  say "building the release binaries (gateway, provider-sandbox, overload)"
  cargo build -q --release --locked -p gateway-http -p provider-sandbox -p gateway-tests --bin gateway \
    --bin provider-sandbox --bin overload
  BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
export BIN_DIR
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# metric NAME_AND_LABELS: the sum of the gateway's samples whose line starts with it.
metric() {
  curl -fsS "$GW/metrics" | awk -v p="$1" 'index($0, p) == 1 { s += $NF } END { printf "%d\n", s }'
}

run() {
  local name=$1 config_edit=$2
  say "run: $name"
  # The stack reads deploy/config/sandbox.toml; a run may change it through its own copy.
  local toml
  toml=$(mktemp)
  cp deploy/config/sandbox.toml "$toml"
  if [ -n "${OVERLOAD_MAX_IN_FLIGHT:-}" ]; then
    sed -i -e "s/^max_in_flight = .*/max_in_flight = $OVERLOAD_MAX_IN_FLIGHT/" "$toml"
  fi
  eval "$config_edit"
  (
    start_stack_with "$toml"
    local before_cb
    before_cb=$(metric 'gateway_http_requests_total{method="POST",route="/callbacks/incs/{token}",status="200"}')
    OVERLOAD_URL=$GW OVERLOAD_KEY=$API_KEY OVERLOAD_CONNECTIONS=$CONNECTIONS OVERLOAD_SECS=$SECS \
      "$BIN_DIR/overload" >"$TMP/client.json"
    say "load done; ${SETTLE}s for the last callbacks"
    sleep "$SETTLE"
    local ok refused_gw refused_sb failed_sb shed
    ok=$(( $(metric 'gateway_http_requests_total{method="POST",route="/callbacks/incs/{token}",status="200"}') - before_cb ))
    refused_gw=$(curl -fsS "$GW/metrics" | awk 'index($0, "gateway_http_requests_total{method=\"POST\",route=\"/callbacks/incs/{token}\"") == 1 && $0 !~ /status="200"/ { s += $NF } END { printf "%d\n", s }')
    # The refused callbacks by status, and every callback by its outcome: what refused them.
    local cb_statuses cb_outcomes
    cb_statuses=$(curl -fsS "$GW/metrics" | grep '^gateway_http_requests_total{method="POST",route="/callbacks/incs/{token}"' \
      | grep -v 'status="200"' | sed -e 's/.*status="\([0-9]*\)"} /\1: /' | tr '\n' ' ')
    cb_outcomes=$(curl -fsS "$GW/metrics" | grep '^gateway_callbacks_total{' | awk '$NF > 0' \
      | sed -e 's/.*event="\([a-z_]*\)",outcome="\([a-z_]*\)"} /\1 \2: /' | tr '\n' ' ')
    refused_sb=$(grep -c 'callback refused' "$TMP/sandbox.log" || true)
    failed_sb=$(grep -c 'callback not delivered' "$TMP/sandbox.log" || true)
    shed=$(curl -fsS "$GW/metrics" | grep '^gateway_requests_shed_total' | tr '\n' ' ')
    python3 - "$TMP/client.json" "$name" "$ok" "$refused_gw" "$refused_sb" "$failed_sb" "$shed" "$cb_statuses" \
      "$cb_outcomes" >>"$REPORT" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
name, ok, refused_gw, refused_sb, failed_sb, shed, cb_statuses, cb_outcomes = sys.argv[2:10]
r, a = c["refused"], c["accepted"]
print(f"## {name}\n")
print(f"- {c['connections']} connections for {c['seconds']:.1f} s: {c['requests']} sends, by status {c['by_status']}")
print(f"- refused sends (429/503): {r['count']}, p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms, without Retry-After: {r['without_retry_after']}")
print(f"- accepted sends (202): {a['count']}, p50 {a['p50_ms']:.1f} ms, p99 {a['p99_ms']:.1f} ms, max {a['max_ms']:.1f} ms")
print(f"- 5xx other than 503: {c['other_5xx']}; connection errors: {c['connection_errors']}")
print(f"- provider callbacks during and after the load: {ok} answered 200; refused by the gateway (non-200): {refused_gw}"
      f" (by status: {cb_statuses.strip() or 'none'}); the sandbox saw {refused_sb} refused and {failed_sb} not delivered")
print(f"- callbacks by event and outcome (`gateway_callbacks_total`): {cb_outcomes.strip() or 'none'}")
print(f"- shed by admission: `{shed.strip()}`")
met = r["p99_ms"] < 50 and r["without_retry_after"] == 0 and c["other_5xx"] == 0 and int(refused_gw) == 0 and int(refused_sb) == 0 and int(failed_sb) == 0
print(f"- **{'met' if met else 'NOT met'}**: 0 callbacks refused, refused sends under 50 ms at p99 with Retry-After, no 5xx but 503\n")
PY
  )
  rm -f "$toml"
}

# start_stack_with TOML: start_stack, with the gateway reading TOML instead of sandbox.toml.
start_stack_with() {
  local toml=$1
  eval "$(declare -f start_stack | sed -e "s#deploy/config/sandbox.toml#$toml#")"
  start_stack
}

{
  echo "# Overload: $CONNECTIONS connections on POST /v1/messages for $SECS s ($STAMP UTC)"
  echo
  echo "Release build, \`make overload\` (scripts/overload.sh), on $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "API budget (\`admission.max_in_flight\`): ${OVERLOAD_MAX_IN_FLIGHT:-$(sed -n 's/^max_in_flight = //p' deploy/config/sandbox.toml)}."
  echo "The client (\`tests/bin/overload.rs\`, one process on the same 2 cores as the gateway, the sandbox and Redis) opens"
  echo "every connection first, then sends on each one request after another (one single-threaded runtime per core, each"
  echo "with its share of the connections, as \`wrk\` does), and times each send from its hand-over to the connection to the"
  echo "arrival of the answer's status and headers. That time includes the client's own wait for a CPU, the kernel's"
  echo "socket queues and the gateway's event loop reaching the request, not only the gateway's handling of it."
  echo
} >"$REPORT"
run "dev key as configured (1,000 sends/s)" ':'
run "key limit lifted: the admission budget refuses" \
  "sed -i -e 's/^scopes = \\[\"send\", \"read\", \"admin\"\\]\$/&\\nrate_per_second = 1000000/' \"\$toml\""
cat "$REPORT"
say "report: $REPORT"
