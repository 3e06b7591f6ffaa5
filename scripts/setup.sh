#!/usr/bin/env bash
# Set up everything tiktok-corpus needs, idempotently: system tools (ffmpeg; Debian chromium when
# Playwright's own browser cannot be downloaded), the .venv with torch and the project, a browser.
# Each step checks first and does nothing when it is already done, so re-runs take seconds.
# Run from anywhere, as root on a fresh Debian (or as a user with everything already there).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
INSTALL_STAMP="$VENV/.corpus-install-stamp"

step() { printf '==> %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
trap 'die "step failed (line $LINENO): $BASH_COMMAND"' ERR

apt_updated=""
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "need root (or sudo) to apt-get install $*"
        sudo="sudo"
    fi
    command -v apt-get >/dev/null || die "no apt-get: install $* yourself, then re-run"
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    step "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- system tools -------------------------------------------------------------------------------
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
    step "ffmpeg: $(command -v ffmpeg)"
else
    apt_install ffmpeg
fi

find_python() {
    local candidate
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# --- virtual environment ------------------------------------------------------------------------
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    step "venv: $VENV ($("$VENV/bin/python" -V))"
else
    python=$(find_python) || { apt_install python3 python3-venv; python=$(find_python) ||
        die "no python3 >= 3.11 with venv support found"; }
    step "creating $VENV with $python ($("$python" -V))"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
fi
PY="$VENV/bin/python"

# torch first, pinned: on the project's machines pip takes these builds from local disk.
if "$PY" - "$TORCH_VERSION" "$TORCHVISION_VERSION" <<'PYCODE' 2>/dev/null
import sys
from importlib.metadata import version
wanted = tuple(sys.argv[1:])
sys.exit((version("torch").split("+")[0], version("torchvision").split("+")[0]) != wanted)
PYCODE
then
    step "torch $TORCH_VERSION / torchvision $TORCHVISION_VERSION: installed"
else
    step "pip install torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
    "$PY" -m pip install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# The project itself (editable, with test extras); re-installed only when pyproject.toml changes.
stamp="$(sha256sum pyproject.toml | cut -d' ' -f1) $(pwd)"
if [ -f "$INSTALL_STAMP" ] && [ "$(cat "$INSTALL_STAMP")" = "$stamp" ] &&
    "$PY" -c 'import tiktok_corpus' 2>/dev/null; then
    step "tiktok-corpus: installed (editable)"
else
    step "pip install -e .[test]"
    "$PY" -m pip install -q -e ".[test]"
    printf '%s\n' "$stamp" >"$INSTALL_STAMP"
fi

# --- browser ------------------------------------------------------------------------------------
playwright_has_chromium() {
    "$PY" -c 'import sys; from tiktok_corpus.config import playwright_chromium_installed as ok; sys.exit(not ok())'
}
if [ -n "${CORPUS_BROWSER_PATH:-}" ]; then
    [ -x "$CORPUS_BROWSER_PATH" ] || die "CORPUS_BROWSER_PATH=$CORPUS_BROWSER_PATH is not an executable"
    step "browser: $CORPUS_BROWSER_PATH (from CORPUS_BROWSER_PATH)"
elif playwright_has_chromium; then
    step "browser: Playwright's Chromium (already installed)"
elif "$VENV/bin/playwright" install chromium >"$VENV/playwright-install.log" 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        step "playwright install-deps chromium"
        "$VENV/bin/playwright" install-deps chromium >>"$VENV/playwright-install.log" 2>&1 ||
            die "playwright install-deps failed: see $VENV/playwright-install.log"
    fi
    step "browser: Playwright's Chromium (downloaded)"
else
    [ -x /usr/bin/chromium ] || apt_install chromium
    step "browser: Debian chromium at /usr/bin/chromium (Playwright's download failed, see" \
        "$VENV/playwright-install.log; picked up automatically, CORPUS_BROWSER_PATH overrides)"
fi

step "setup done"
