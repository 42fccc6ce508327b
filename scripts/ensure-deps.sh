#!/usr/bin/env bash
# Installs what the gateway needs to run and test on a fresh Debian machine: redis-server (with
# redis-cli) from the OS packages. Does nothing when it is already there.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "installing redis-server from the OS packages..." >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null
