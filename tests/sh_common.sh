# Sourced by the tests/test_*.sh scripts: the binary and data from ctest's environment, a
# scratch directory removed on exit, ok/bad reporting (each script exits with $fail).
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
BUILD=${LLAMALITE_BUILD:-build}
SHARED=${LLAMALITE_SHARED:-../shared}
M=$SHARED/models
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

# need FILE...: skip the test (exit 77) unless the binary and every FILE exist.
need() {
    [ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 77; }
    local f
    for f in "$@"; do [ -f "$f" ] || { echo "no $f"; exit 77; }; done
}

# cut_layers IN K OUT: IN's first K layers as a model of their own (a layer-skip draft), by
# tests/cut_layers.py; fails without python3.
cut_layers() {
    command -v python3 >/dev/null && python3 "$(dirname "$0")/cut_layers.py" "$1" "$3" "$2"
}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
