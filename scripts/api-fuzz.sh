#!/usr/bin/env bash
# `make api-fuzz`: schemathesis (pinned in scripts/python-tools.txt) against a gateway started with
# the provider sandbox: every check, the phases examples, coverage, fuzzing and stateful (chained by
# the spec's `links`), a fixed seed. The callbacks paths are fuzzed with their right tokens, so a
# garbage body must get a 4xx from the parser itself, never a 5xx or a 200.
#
# Env: SEED (default 20261130), MAX_EXAMPLES per operation (default 100), BIN_DIR, KEEP_TMP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stack.sh

SEED=${SEED:-20261130}
MAX_EXAMPLES=${MAX_EXAMPLES:-100}

python_tools
start_stack
say "$("$PYTOOLS/schemathesis" --version)"
started=$(date +%s)
# The config file carries the callbacks' tokens; the API key goes in a header.
SCHEMATHESIS_CONFIG=openapi/schemathesis.toml
PYTHONPATH=openapi SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$PYTOOLS/schemathesis" --config-file "$SCHEMATHESIS_CONFIG" run "$GW/openapi.json" \
  --url "$GW" \
  --header "Authorization: Bearer $API_KEY" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --seed "$SEED" \
  --max-examples "$MAX_EXAMPLES" \
  --workers 2 \
  --report junit --report-dir "$TMP/report" \
  --suppress-health-check too_slow,filter_too_much \
  "$@" | tee "$TMP/schemathesis.out"
rc=${PIPESTATUS[0]}
say "schemathesis finished in $(( $(date +%s) - started ))s with exit code $rc"
exit "$rc"
