#!/usr/bin/env bash
# scripts/setup-s3.sh: install the loopback S3 server the S3 upload test starts (PyPI moto[server],
# pinned) into .runtime/moto-venv. Idempotent and quick when already done. Touches nothing outside
# the repository's .runtime/.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.runtime/moto-venv
MOTO="moto[server]==5.1.22"
if [ -x "$VENV/bin/moto_server" ] && "$VENV/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '5.1.22')" 2>/dev/null; then
    exit 0
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian ships venv support separately.
    sudo=(); [[ "$(id -u)" == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends python3-venv
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "$MOTO"
