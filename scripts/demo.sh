#!/usr/bin/env bash
# README command (a): set up a fresh machine if needed, build, and run one complete graduate session on
# simulated hardware with the embedded SQLite database. Extra arguments go to `kiosk demo`
# (e.g. --frames tests/fixtures/demo/fail, --data-dir /tmp/kiosk-data).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
cd "$root"
exec cargo run --quiet -p kiosk --bin kiosk -- demo "$@"
