#!/usr/bin/env bash
# `make dashboards-check`: proves that the observability files under deploy/ work against the real
# gateway (DESIGN.md §7):
#   1. promtool: check config (deploy/prometheus/prometheus.yml and the generated one), check rules
#      and test rules (deploy/prometheus/alerts.yml, alerts.test.yml);
#   2. starts its own Redis, provider sandbox and gateway on free ports, and a real Prometheus that
#      scrapes the gateway every second and loads alerts.yml;
#   3. evaluates every panel query on the idle gateway, before any traffic: each must return a
#      series (every family exists at start-up with its known label sets at 0);
#   4. drives traffic through the sandbox: successes on every channel (the RCS lane slowed so it
#      hits its rate limit), permanent rejections (INCS 10002 in an HTTP 200), 429s with
#      Retry-After, a WhatsApp send to a number the sandbox says is not on WhatsApp (falling back
#      to Viber), transient 500s until a message is dead-lettered, API 4xx, API 5xx (Redis paused
#      for a moment) and 429s from the per-key API rate limit; the sandbox calls the gateway back
#      (INCS callbacks, InnoPaaS webhooks, so messages reach delivered and read) and the gateway
#      delivers the resulting events to the sandbox's webhook recorder (the `[[subscriptions]]`
#      of deploy/config/sandbox.toml);
#   4. `promtool check metrics` on the gateway's /metrics after that traffic;
#   5. evaluates every panel query of deploy/grafana/dashboards/gateway.json through Prometheus'
#      HTTP API and fails unless each returns at least one series. Panels in PENDING below are
#      reported but do not fail the check (their metric families get no samples yet);
#   6. checks that Prometheus evaluates every alert rule without error.
# Everything it starts is stopped on exit. Only 127.0.0.1 is contacted.
#
# Env: KEEP_TMP=1 keeps the temporary directory (logs, configs, TSDB) for a look afterwards;
# BIN_DIR=dir uses the gateway and provider-sandbox binaries there instead of building them.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DASHBOARD=deploy/grafana/dashboards/gateway.json
PROM_DIR=deploy/prometheus
METRICS_RS=crates/gateway-http/src/metrics.rs
API_KEY=sandbox-dev-key

# Panels whose metric families cannot have samples yet, as "title|reason". They are evaluated and
# reported, but do not fail the check; one that returns data is flagged so it can be removed here.
# Empty: every panel gets data from the traffic below. Add an entry only for a panel of a feature
# still being built.
PENDING=()

source scripts/stack.sh

# ------------------------------------------------------------------------------------- tools
ensure_prometheus() {
  if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then return; fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  say "installing prometheus (with promtool) from the OS packages"
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null 2>&1; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  fi
  command -v prometheus >/dev/null && command -v promtool >/dev/null
}

ensure_prometheus
scripts/ensure-deps.sh
for tool in curl python3 redis-server redis-cli; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing"
done
say "$(prometheus --version 2>&1 | head -n 1)"

# ------------------------------------------------------------------------------------- static
say "promtool check config $PROM_DIR/prometheus.yml"
promtool check config "$PROM_DIR/prometheus.yml"
say "promtool check rules $PROM_DIR/alerts.yml"
promtool check rules "$PROM_DIR/alerts.yml"
say "promtool test rules $PROM_DIR/alerts.test.yml"
promtool test rules "$PROM_DIR/alerts.test.yml"
rule_count=$(grep -c '^ *- alert:' "$PROM_DIR/alerts.yml")
alert_tests=$(grep -c 'alertname:' "$PROM_DIR/alerts.test.yml")
alert_firing_cases=$(grep -c 'exp_labels:' "$PROM_DIR/alerts.test.yml")

# ------------------------------------------------------------------------------------- build
find_binaries

# ------------------------------------------------------------------------------------- processes
TMP=$(mktemp -d "${TMPDIR:-/tmp}/dashboards-check.XXXXXX")
pids=()
ok_exit=0
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  stop_pids "${pids[@]}"
  if [ "$rc" -ne 0 ] && [ "$ok_exit" = 0 ]; then
    for log in gateway sandbox prometheus redis; do
      if [ -s "$TMP/$log.log" ]; then
        echo "---- last lines of $log.log ----" >&2
        tail -n 15 "$TMP/$log.log" >&2
      fi
    done
  fi
  if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  exit "$rc"
}
trap cleanup INT TERM EXIT

ports=()
while [ "${#ports[@]}" -lt 4 ]; do
  p=$(free_port)
  case " ${ports[*]:-} " in *" $p "*) ;; *) ports+=("$p") ;; esac
done
REDIS_PORT=${ports[0]} SANDBOX_PORT=${ports[1]} GATEWAY_PORT=${ports[2]} PROM_PORT=${ports[3]}
GW="http://127.0.0.1:$GATEWAY_PORT"
SB="http://127.0.0.1:$SANDBOX_PORT"
PROM="http://127.0.0.1:$PROM_PORT"


say "redis on 127.0.0.1:$REDIS_PORT"
mkdir -p "$TMP/redis"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$TMP/redis" --save "" --appendonly no \
  --maxmemory-policy noeviction --loglevel warning >"$TMP/redis.log" 2>&1 &
pids+=($!)
wait_until 10 "redis" redis-cli -p "$REDIS_PORT" ping

say "provider sandbox on $SB (calling the gateway back)"
SANDBOX_INCS_CALLBACK_URL="$GW/callbacks/incs/sandbox-incs-callback" \
SANDBOX_INNOPAAS_WEBHOOK_URL="$GW/callbacks/innopaas/sandbox-innopaas-callback" \
  "$bin/provider-sandbox" --listen "127.0.0.1:$SANDBOX_PORT" >"$TMP/sandbox.log" 2>&1 &
pids+=($!)
wait_until 10 "sandbox" curl -fsS --max-time 1 "$SB/_sandbox/health"

# A copy of the make-run config pointing at this sandbox, with
# - the RCS account slowed to 1 message/s (burst 1), so a few RCS sends hit the lane's rate limit;
# - one more API key, limited to 1 request/s, to be refused by the per-key limit;
# - short retries (below), so a message that keeps failing is dead-lettered within a second.
SLOW_KEY=dashboards-check-slow-key
sed -e "s#http://127.0.0.1:8090#$SB#g" \
    -e '/^name = "incs-rcs"/,/^\[accounts.incs\]/{/^burst *=/d;s/^rate_per_second *=.*/rate_per_second = 1\nburst = 1/}' \
    deploy/config/sandbox.toml >"$TMP/gateway.toml"
cat >>"$TMP/gateway.toml" <<TOML

[[api_keys]]
name = "dashboards-check-slow"
sha256 = "$(printf %s "$SLOW_KEY" | sha256sum | cut -d' ' -f1)"
scopes = ["read"]
rate_per_second = 1
TOML
python3 - "$TMP/gateway.toml" "$SB" <<'PY' || die "could not derive the test configuration from deploy/config/sandbox.toml"
import sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
rcs = [a for a in cfg["accounts"] if a["name"] == "incs-rcs"]
assert rcs and rcs[0]["rate_per_second"] == 1 and rcs[0]["burst"] == 1, "account incs-rcs not slowed"
assert sys.argv[2] in open(sys.argv[1]).read(), "no sandbox URL rewritten"
assert any(a["provider"] == "innopaas" for a in cfg["accounts"]), "no InnoPaaS account"
subs = cfg.get("subscriptions", [])
assert any(s["url"] == sys.argv[2] + "/_sandbox/webhooks" for s in subs), "no subscription to the sandbox's webhook recorder"
PY
say "gateway on $GW"
GATEWAY__SERVER__LISTEN="127.0.0.1:$GATEWAY_PORT" GATEWAY__REDIS__URL="redis://127.0.0.1:$REDIS_PORT" \
  GATEWAY__ENGINE__RETRY_SCHEDULE_MS="[200, 400]" LOG_FORMAT=json \
  "$bin/gateway" --config "$TMP/gateway.toml" >"$TMP/gateway.log" 2>&1 &
pids+=($!)
wait_until 20 "gateway readiness" curl -fsS --max-time 1 "$GW/health/ready"

cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/$PROM_DIR/alerts.yml
scrape_configs:
  - job_name: gateway
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$GATEWAY_PORT"]
YAML
say "promtool check config (generated, scraping 127.0.0.1:$GATEWAY_PORT every 1s)"
promtool check config "$TMP/prometheus.yml" >/dev/null
say "prometheus on $PROM"
prometheus --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
pids+=($!)
wait_until 30 "prometheus readiness" curl -fsS --max-time 1 "$PROM/-/ready"

# ------------------------------------------------------------------------------------- idle
# Before any traffic, every panel must already show a number: the families and their known label
# sets exist at start-up at 0, and rate() needs two scrapes of them.
say "evaluating every panel query on the idle gateway (before any traffic)"
printf '%s\n' "${PENDING[@]}" >"$TMP/pending.txt"
idle_scrapes() {
  curl -fsS --max-time 5 -G "$PROM/api/v1/query" --data-urlencode 'query=count_over_time(up{job="gateway"}[1m])' \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if r and float(r[0]["value"][1]) >= 3 else 1)'
}
wait_until 30 "Prometheus to scrape the idle gateway 3 times" idle_scrapes
if ! python3 scripts/dashboard_panels.py "$DASHBOARD" "$PROM" "$TMP/pending.txt" "$METRICS_RS" "$TMP/idle-summary.txt"; then
  die "on an idle gateway, some panel queries return no series (see the FAIL lines above)"
fi
idle_panels=$(sed -n 's/^ok=//p' "$TMP/idle-summary.txt")

# ------------------------------------------------------------------------------------- traffic
# http METHOD PATH [BODY] [KEY]: prints the status code.
http() {
  local args=(-sS -o /dev/null -w '%{http_code}' --max-time 10 -X "$1" "$GW$2"
    -H "Authorization: Bearer ${4:-$API_KEY}" -H 'Content-Type: application/json')
  if [ -n "${3:-}" ]; then args+=(-d "$3"); fi
  curl "${args[@]}" || true
}
send() {
  local code
  code=$(http POST /v1/messages "$1")
  [ "$code" = 202 ] || die "POST /v1/messages answered $code for $1"
}
fault() {
  curl -fsS -o /dev/null --max-time 5 -X POST "$SB/_sandbox/faults" -H 'Content-Type: application/json' -d "$1" \
    || die "the sandbox refused the fault $1"
}
# metric SELECTOR-REGEX: the sum of the gateway's current samples whose line matches.
metric() {
  curl -fsS --max-time 5 "$GW/metrics" | awk -v re="$1" '$0 !~ /^#/ && $0 ~ re { s += $NF } END { printf "%d\n", s }'
}
metric_at_least() { [ "$(metric "$1")" -ge "$2" ]; }

wa() { printf '{"channel":"whatsapp","to":"8526841%04d","type":"text","text":"%s"}' "$1" "$2"; }

say "traffic: successes on whatsapp (text, image), viber and rcs (RCS lane rate-limited)"
for i in $(seq 1 10); do send "$(wa "$i" "Hello $i")"; done
send '{"channel":"whatsapp","to":"85268411234","type":"image","image":{"link":"https://example.com/pic.jpg","caption":"a picture"}}'
send '{"channel":"whatsapp","to":"85268411234","type":"text","text":{"body":"Hello as an object"}}'
for i in 1 2 3; do send "{\"channel\":\"viber\",\"to\":\"8526841200$i\",\"type\":\"text\",\"text\":\"Hi $i\"}"; done
# Four at once on the RCS lane (1 message/s): it has work its rate does not allow yet.
for i in 1 2 3 4; do send "{\"channel\":\"rcs\",\"to\":\"8526841300$i\",\"type\":\"text\",\"text\":\"Hi $i\"}"; done
wait_until 30 "19 submitted sends" metric_at_least 'gateway_provider_requests_total.*outcome="submitted"' 19

say "traffic: 2 sends to Indonesia (routed to InnoPaaS); callbacks and webhooks take messages to read"
for i in 1 2; do send "{\"channel\":\"whatsapp\",\"to\":\"62815190000$i\",\"type\":\"text\",\"text\":\"Halo $i\"}"; done
wait_until 30 "2 sends through InnoPaaS" metric_at_least 'gateway_provider_requests_total.*(provider="innopaas".*outcome="submitted"|outcome="submitted".*provider="innopaas")' 2
wait_until 30 "INCS status callbacks" metric_at_least 'gateway_callbacks_total.*(provider="incs".*event="status"|event="status".*provider="incs")' 1
wait_until 30 "InnoPaaS status webhooks" metric_at_least 'gateway_callbacks_total.*(provider="innopaas".*event="status"|event="status".*provider="innopaas")' 1
wait_until 30 "delivered reports" metric_at_least '^gateway_accept_to_delivered_seconds_count' 2
wait_until 30 "events delivered to the subscriber" metric_at_least 'gateway_webhook_deliveries_total.*outcome="delivered"' 1

say "traffic: a WhatsApp message to a number not on WhatsApp falls back to Viber"
curl -fsS -o /dev/null --max-time 5 -X POST "$SB/_sandbox/recipients" -H 'Content-Type: application/json' \
  -d '{"to":"85268415001","channel":"whatsapp","behaviour":"undeliverable"}' || die "sandbox refused the recipient behaviour"
send '{"channel":"whatsapp","to":"85268415001","type":"text","text":"Your code is 123456","fallback":[{"channel":"viber","type":"text","text":"Your code is 123456"}]}'
wait_until 30 "a fallback step" metric_at_least '^gateway_fallbacks_total' 1

say "traffic: 2 permanent rejections (INCS 10002 / Meta 132012 in an HTTP 200)"
fault '{"provider":"incs","status":200,"count":2,"body":{"status":"error","code":10002,"message":"(#132012) Parameter format does not match","data":{},"error":{}}}'
for i in 21 22; do send "$(wa "$i" "rejected $i")"; done
wait_until 30 "2 rejected sends" metric_at_least 'gateway_provider_requests_total.*outcome="rejected' 2

say "traffic: 2 throttled sends (429, Retry-After: 1), then delivered after the pause"
before=$(metric 'gateway_provider_requests_total.*outcome="submitted"')
fault '{"provider":"incs","status":429,"retry_after":1,"count":2}'
for i in 31 32; do send "$(wa "$i" "throttled $i")"; done
wait_until 30 "2 throttled sends" metric_at_least 'gateway_provider_requests_total.*outcome="throttled"' 2
wait_until 30 "the throttled messages to go out" metric_at_least 'gateway_provider_requests_total.*outcome="submitted"' $((before + 2))

# On Viber: its sender has one account, so the message cannot fail over to InnoPaaS.
say "traffic: transient 500s until one Viber message is dead-lettered (retry schedule 200 ms, 400 ms)"
fault '{"provider":"incs","status":500,"count":3}'
send '{"channel":"viber","to":"85268414100","type":"text","text":"transient"}'
wait_until 30 "3 transient sends" metric_at_least 'gateway_provider_requests_total.*outcome="transient"' 3
wait_until 30 "a dead letter" metric_at_least '^gateway_dead_letters_total' 1
curl -fsS -o /dev/null --max-time 5 -X DELETE "$SB/_sandbox/faults"

say "traffic: API 4xx (401, 404, 422)"
code=$(http POST /v1/messages "$(wa 51 x)" wrong-key); [ "$code" = 401 ] || die "wrong key answered $code, not 401"
code=$(http GET /v1/messages/0190d0c4-0000-7000-8000-000000000000); [ "$code" = 404 ] || die "unknown message answered $code, not 404"
code=$(http POST /v1/messages '{"channel":"whatsapp","to":"123","type":"text","text":"x"}'); [ "$code" = 422 ] || die "bad phone answered $code, not 422"
code=$(http GET /v1/no-such-route); [ "$code" = 404 ] || die "unknown route answered $code, not 404"

say "traffic: API 5xx (Redis paused for 3 s: the API answers 503 instead of waiting)"
redis-cli -p "$REDIS_PORT" client pause 3000 all >/dev/null
c1=$(http GET /health/ready)
c2=$(http POST /v1/messages "$(wa 61 "while Redis is paused")")
say "  GET /health/ready -> $c1, POST /v1/messages -> $c2"
case "$c1$c2" in *5??*) ;; *) die "no 5xx while Redis was paused (got $c1 and $c2)" ;; esac
wait_until 20 "gateway readiness after the pause" curl -fsS --max-time 1 "$GW/health/ready"

say "traffic: the Viber sender paused by an operator; a message with ttl_seconds 1 expires there, then resume"
code=$(http POST /v1/senders/viber-main/pause '{"reason":"dashboards-check"}'); [ "$code" = 200 ] || die "pause answered $code"
send '{"channel":"viber","to":"85268414200","type":"text","text":"expires while paused","ttl_seconds":1}'
wait_until 30 "an expired message" metric_at_least 'gateway_status_transitions_total.*status="expired"' 1
wait_until 30 "the pause gauge" metric_at_least 'gateway_sender_paused_seconds.*sender="viber-main"' 1
code=$(http POST /v1/senders/viber-main/resume); [ "$code" = 200 ] || die "resume answered $code"

say "traffic: a few more successes after the faults"
for i in $(seq 71 75); do send "$(wa "$i" "after $i")"; done

say "traffic: 6 quick reads with a key limited to 1 request/s (burst 2): the rest answer 429"
codes=""
for _ in $(seq 1 6); do codes="$codes $(http GET /v1/messages/0190d0c4-0000-7000-8000-000000000000 "" "$SLOW_KEY")"; done
say "  answers:$codes"

# Prometheus must have scraped the state after the traffic (twice, so that rate() sees it).
prom_value() {
  curl -fsS --max-time 5 -G "$PROM/api/v1/query" --data-urlencode "query=$1" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else -1)'
}
prom_at_least() { [ "$(prom_value "$1")" -ge "$2" ]; }
expected_accepted=$(metric '^gateway_messages_accepted_total')
wait_until 30 "Prometheus to scrape the traffic" prom_at_least 'sum(gateway_messages_accepted_total)' "$expected_accepted"
sleep 3

say "promtool check metrics (the gateway's /metrics after the traffic)"
curl -fsS --max-time 5 "$GW/metrics" >"$TMP/metrics.txt"
if ! promtool check metrics <"$TMP/metrics.txt" >"$TMP/check-metrics.txt" 2>&1; then
  cat "$TMP/check-metrics.txt" >&2
  die "promtool check metrics found problems"
fi
cat "$TMP/check-metrics.txt"

# ------------------------------------------------------------------------------------- panels
say "evaluating every panel query of $DASHBOARD"
printf '%s\n' "${PENDING[@]}" >"$TMP/pending.txt"
panels_rc=0
python3 scripts/dashboard_panels.py "$DASHBOARD" "$PROM" "$TMP/pending.txt" "$METRICS_RS" "$TMP/summary.txt" || panels_rc=$?

# ------------------------------------------------------------------------------------- rules
say "alert rules as Prometheus evaluates them"
curl -fsS --max-time 5 "$PROM/api/v1/rules" >"$TMP/rules.json"
curl -fsS --max-time 5 "$PROM/api/v1/alerts" >"$TMP/alerts.json"
rules_rc=0
python3 - "$TMP/rules.json" "$TMP/alerts.json" "$TMP/summary.txt" <<'PY' || rules_rc=$?
import json, sys
rules = [r for g in json.load(open(sys.argv[1]))["data"]["groups"] for r in g["rules"]]
alerts = json.load(open(sys.argv[2]))["data"]["alerts"]
bad = [r for r in rules if r.get("health") != "ok"]
for r in bad:
    print(f"  FAIL rule {r['name']}: health {r.get('health')} {r.get('lastError', '')}")
active = sorted({f"{a['labels']['alertname']} ({a['state']})" for a in alerts})
print(f"  {len(rules)} rules loaded, {len(rules) - len(bad)} healthy")
print("  active during the check: " + (", ".join(active) if active else "none"))
with open(sys.argv[3], "a") as f:
    f.write(f"rules_loaded={len(rules)}\nrules_bad={len(bad)}\n")
    f.write("active_alerts=" + ", ".join(active) + "\n")
sys.exit(1 if bad or not rules else 0)
PY

# ------------------------------------------------------------------------------------- summary
get() { sed -n "s/^$1=//p" "$TMP/summary.txt" | head -n 1; }
echo
echo "dashboards-check summary"
echo "  promtool check config   ok (deploy/prometheus/prometheus.yml and the generated scrape config)"
echo "  promtool check rules    ok ($rule_count alert rules)"
echo "  promtool test rules     ok ($alert_tests alert evaluations, $alert_firing_cases expected to fire, the rest must not)"
echo "  promtool check metrics  ok"
echo "  rules in Prometheus     $(get rules_loaded) loaded, $(get rules_bad) unhealthy; active during the check: $(get active_alerts)"
echo "  idle gateway            $idle_panels panels showed data before any traffic"
echo "  dashboard panels        $(get panels): $(get ok) ok, $(get pending) pending, $(get failed) failed"
echo "  panel queries           $(get queries): $(get queries_ok) returned series, $(get queries_pending) pending, $(get queries_failed) failed; other problems: $(get problems)"
echo "  metric families         $(get families) defined in $METRICS_RS, all on the dashboard unless listed as failed above"
if grep -q '^pending_panel=' "$TMP/summary.txt"; then echo "  pending panels:"; else echo "  pending panels:        none"; fi
while IFS= read -r t; do
  reason=""
  for entry in "${PENDING[@]}"; do
    if [ "${entry%%|*}" = "$t" ]; then reason=${entry#*|}; fi
  done
  echo "    - $t: $reason"
done < <(sed -n 's/^pending_panel=//p' "$TMP/summary.txt")
if [ "$panels_rc" -ne 0 ] || [ "$rules_rc" -ne 0 ]; then
  die "see the FAIL lines above"
fi
ok_exit=1
echo "dashboards-check: $(get ok) passed, 0 failed, $(get pending) skipped"
