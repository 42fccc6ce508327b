#!/usr/bin/env bash
# `make clients-check`: the clients our callers generate from openapi/openapi.json work.
#   1. openapi-python-client (pinned in scripts/python-tools.txt) generates a Python client:
#      any warning, or an operation it skips, fails the check;
#   2. openapi-typescript (npm, pinned in clients/package.json) generates TypeScript types, which
#      tsc then compiles (strict): any warning fails the check;
#   3. a gateway started with the provider sandbox is sent one message of every channel and type
#      through the generated Python client (clients/smoke.py), each read back until a provider
#      has taken it.
# Env: BIN_DIR, KEEP_TMP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source scripts/stack.sh

python_tools
OUT="${CARGO_TARGET_DIR:-target}/clients"
rm -rf "$OUT" && mkdir -p "$OUT"

say "openapi-python-client: generating the Python client"
(cd "$OUT" && "$ROOT/$PYTOOLS/openapi-python-client" generate --path "$ROOT/openapi/openapi.json" --meta none \
  --config "$ROOT/clients/openapi-python-client.yaml" --output-path gateway_client) >"$OUT/python.log" 2>&1 \
  || { cat "$OUT/python.log"; die "openapi-python-client failed"; }
cat "$OUT/python.log"
if grep -Eiq 'warning|skipping|cannot|unable|not supported' "$OUT/python.log"; then
  die "openapi-python-client reported warnings or skipped something (above)"
fi
operations=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(len(v) for v in d["paths"].values()))' openapi/openapi.json)
generated=$(find "$OUT/gateway_client/api" -name '*.py' ! -name '__init__.py' | wc -l)
[ "$generated" = "$operations" ] || die "the Python client has $generated operations, the document $operations"
say "Python client: $generated of $operations operations, no warnings"

say "openapi-typescript: generating TypeScript types (npm ci in clients/)"
mkdir -p "$OUT/node"
cp clients/package.json clients/package-lock.json "$OUT/node/"
(cd "$OUT/node" && npm ci --no-audit --no-fund --silent) || die "npm ci failed"
"$OUT/node/node_modules/.bin/openapi-typescript" openapi/openapi.json -o "$OUT/gateway.d.ts" >"$OUT/ts.log" 2>&1 \
  || { cat "$OUT/ts.log"; die "openapi-typescript failed"; }
cat "$OUT/ts.log"
if grep -Eiq 'warn|⚠|error' "$OUT/ts.log"; then die "openapi-typescript reported warnings (above)"; fi
"$OUT/node/node_modules/.bin/tsc" --strict --noEmit "$OUT/gateway.d.ts" || die "the generated TypeScript does not compile"
say "TypeScript types: $(grep -c '^    "/' "$OUT/gateway.d.ts" || true) paths, no warnings, compiled with tsc --strict"

start_stack
say "smoke test through the generated Python client"
PYTHONPATH="$OUT" "$PYTOOLS/python" clients/smoke.py "$GW" "$API_KEY"
