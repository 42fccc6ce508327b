#!/usr/bin/env bash
# `make api-fuzz`: schemathesis (pinned in scripts/python-tools.txt) against a gateway started with
# the provider sandbox: every check, the phases examples, coverage, fuzzing and stateful (chained by
# the spec's `links`), a fixed seed. The callbacks paths are fuzzed with their right tokens, so a
# garbage body must get a 4xx from the parser itself, never a 5xx or a 200.
#
# Env: SEED (default 20261130), MAX_EXAMPLES per operation (default 50), BIN_DIR, KEEP_TMP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

SEED=${SEED:-20261130}
MAX_EXAMPLES=${MAX_EXAMPLES:-50}

python_tools
# The fuzzer judges the contract, not latency: a Redis call slowed past the sandbox config's 1 s by a
# busy machine would be a documented 503, which the server-error checks count as a failure. (The
# Redis client's own 500 ms response timeout still applies: on a heavily loaded machine a rare 503
# can remain.)
start_stack GATEWAY__REDIS__TIMEOUT_MS=10000
say "$("$PYTOOLS/schemathesis" --version)"
started=$(date +%s)
# The config file carries the callbacks' tokens; the API key goes in a header.
SCHEMATHESIS_CONFIG=openapi/schemathesis.toml
# One worker: with two threads, Hypothesis can parse lambda sources (`ast.parse`) in both at once,
# and CPython 3.11 (this machine's) keeps the AST constructor's recursion depth in state the threads
# share (cpython gh-106905), so a run can die with "SystemError: AST constructor recursion depth
# mismatch": a crash of the tool, not a finding about the API.
PYTHONPATH=openapi SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$PYTOOLS/schemathesis" --config-file "$SCHEMATHESIS_CONFIG" run "$GW/openapi.json" \
  --url "$GW" \
  --header "Authorization: Bearer $API_KEY" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --workers 1 \
  --report junit --report-dir "$TMP/report" \
  --suppress-health-check too_slow,filter_too_much \
  "$@" | tee "$TMP/schemathesis.out"
rc=${PIPESTATUS[0]}
say "schemathesis finished in $(( $(date +%s) - started ))s with exit code $rc"
exit "$rc"
