#!/usr/bin/env bash
# Sets up (packages, configure, build) and runs the host in the foreground on etc/host.ini.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh build
exec build/bin/host --config etc/host.ini "$@"
