#!/usr/bin/env bash
# Cross-compiles the kiosk binaries for aarch64-unknown-linux-gnu (Raspberry Pi OS bookworm, 64-bit)
# without Docker, through Debian's multiarch packages (../shared/TOOLCHAIN.md). Users with Docker can
# use `cross build --target aarch64-unknown-linux-gnu --release` instead (Cross.toml).
#
#   scripts/cross-aarch64.sh [--release] [--no-setup] [extra cargo args]
#
# Installs what is missing (needs root): the rustup target, the cross gcc and libc, and the arm64 -dev
# packages the build links against (libudev for serialport, the Slint backend's libraries). Uses its own
# target directory (CARGO_TARGET_DIR, default target-aarch64/) so it never invalidates the host build.
# ONNX Runtime is loaded at run time (ort load-dynamic), so nothing of it is linked here; the aarch64
# library comes from the onnxruntime aarch64 wheel on the device.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target=aarch64-unknown-linux-gnu
profile=()
setup=1
while [ $# -gt 0 ]; do
    case "$1" in
        --release) profile=(--release); shift ;;
        --no-setup) setup=0; shift ;;
        *) break ;;
    esac
done

if [ "$setup" = 1 ]; then
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    need=()
    command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
    for p in libudev-dev libfontconfig-dev libinput-dev libxkbcommon-dev libgbm-dev; do
        dpkg -s "$p:arm64" >/dev/null 2>&1 || need+=("$p:arm64")
    done
    if [ ${#need[@]} -gt 0 ]; then
        sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}"
    fi
fi

export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
# ring and SQLite are C: the cc crate finds the cross compiler by these names.
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target-aarch64}"
cd "$root"
start=$(date +%s)
cargo build --target "$target" -p kiosk --bins "${profile[@]}" "$@"
end=$(date +%s)
dir="$CARGO_TARGET_DIR/$target/$([ ${#profile[@]} -gt 0 ] && echo release || echo debug)"
for bin in kiosk kioskctl; do
    file "$dir/$bin" 2>/dev/null || ls -l "$dir/$bin"
done
echo "aarch64 build took $((end - start)) s"
