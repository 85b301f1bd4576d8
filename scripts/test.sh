#!/usr/bin/env bash
# README command (b): set up a fresh machine if needed (apt packages, ONNX Runtime, models), then run the
# whole test suite. Tests that need the models or ../shared fail loudly when they are missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
# The S3 upload test starts moto's S3 server on loopback (PyPI moto[server], into .runtime/).
"$root/scripts/setup-s3.sh"
cd "$root"
exec cargo test --workspace "$@"
