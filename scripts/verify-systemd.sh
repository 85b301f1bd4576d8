#!/usr/bin/env bash
# Checks the units in systemd/ with `systemd-analyze verify` (CI runs this; exit status non-zero on any
# finding) and prints the `systemd-analyze security` exposure score of kiosk.service.
#
# verify also checks that ExecStart's program exists, and the binaries are not installed on a CI
# machine: the units are copied to a scratch folder with /usr/bin/<name> pointed at stand-in
# executables there. Nothing else in the units is changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v systemd-analyze >/dev/null; then
    # A container CI image may lack systemd; the analyzer is in Debian's systemd package.
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends systemd
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/bin" "$scratch/units"
for unit in "$root"/systemd/*.service; do
    name="$(basename "$unit")"
    sed -E "s#/usr/bin/([a-z-]+)#$scratch/bin/\\1#g" "$unit" >"$scratch/units/$name"
    for prog in $(grep -oE '/usr/bin/[a-z-]+' "$unit" | sort -u); do
        printf '#!/bin/sh\nexit 0\n' >"$scratch/bin/$(basename "$prog")"
        chmod +x "$scratch/bin/$(basename "$prog")"
    done
done
status=0
out="$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no "$scratch"/units/*.service 2>&1)" || status=$?
if [ -n "$out" ]; then
    echo "$out" >&2
    # verify exits 0 on some warnings; a warning about our units is a failure here too.
    if echo "$out" | grep -q "$scratch/units"; then status=1; fi
fi
if [ "$status" -ne 0 ]; then
    echo "systemd-analyze verify: FAILED" >&2
    exit 1
fi
echo "systemd-analyze verify: ok ($(ls "$scratch"/units | tr '\n' ' '))"
if [ "${1:-}" = "--security" ]; then
    systemd-analyze security --offline=true --no-pager "$scratch/units/kiosk.service" | tail -n 25
else
    systemd-analyze security --offline=true --no-pager "$scratch/units/kiosk.service" | tail -n 1
fi
