#!/usr/bin/env bash
# `make soak`: the gateway under steady load for a long time (not part of `make test`).
#
# One release build; bench/soak.py starts Redis, the provider sandbox (with callbacks) and the
# gateway (with one event subscription) on free ports, measures the full pipeline's rate, then sends
# at half of it for SOAK_MINUTES (30) one-minute slices, sampling the gateway's RSS and Redis memory
# each minute, and writes bench/results/<date>-soak.md and .svg. Exits non-zero when a check fails.
# Knobs: SOAK_MINUTES (30), SOAK_RATE (messages/s; default half the measured full-pipeline rate),
# SOAK_CALIBRATE (10000 messages for the measurement), SOAK_RETENTION (180 s message retention),
# SOAK_OUT (bench/results), BIN_DIR (release binaries already built there, e.g. a copy that later
# builds cannot replace mid-run: no build).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-deps.sh
PYTHON=${PYTHON:-python3}
if [ -z "${BIN_DIR:-}" ]; then
  cargo build --release --locked -p gateway-http -p provider-sandbox
  TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  BIN_DIR="$TARGET_DIR/release"
fi
exec "$PYTHON" bench/soak.py --bin-dir "$BIN_DIR" \
  --minutes "${SOAK_MINUTES:-30}" --rate "${SOAK_RATE:-0}" --calibrate "${SOAK_CALIBRATE:-10000}" \
  --retention "${SOAK_RETENTION:-180}" --out "${SOAK_OUT:-bench/results}"
