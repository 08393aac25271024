#!/usr/bin/env bash
# Output that cannot be written is an error (issue 20, defect 3): with stdout on a full disk
# (/dev/full) every printing command exits 1 with one line on stderr instead of 0 with nothing
# written; a reader that quits early (`| head -c1`) stays a quiet exit 0.
. "$(dirname "$0")/sh_common.sh"
TINY=$BUILD/tiny.gguf
need "$TINY"
[ -c /dev/full ] || { echo "no /dev/full"; exit 77; }
printf 'hello world\n' > "$TMP/text.txt"

commands=(
    "info $TINY"
    "grammar --json --print"
    "grammar --grammar root::=\"a\""
    "bench -m $TINY -o json -p 8 -n 4 -r 1"
    "bench -m $TINY -p 8 -n 4 -r 1"
    "tokenize -m $TINY -p hello"
    "trace -m $TINY -p hello -n 2"
    "template --help"
    "quantize $TINY $TMP/q.gguf Q8_0"
    "-m $TINY -p hello -n 4"
    "--help"
)
for c in "${commands[@]}"; do
    # shellcheck disable=SC2086
    "$BIN" $c >/dev/full 2>"$TMP/err"
    rc=$?
    n=$(grep -c "cannot write the output" "$TMP/err")
    if [ $rc = 1 ] && [ "$n" = 1 ]; then
        ok "$c >/dev/full: exit 1, '$(grep "cannot write" "$TMP/err")'"
    else
        bad "$c >/dev/full: exit $rc, stderr: $(cat "$TMP/err")"
    fi
done

# The same commands into a reader that quits after one byte: quiet, exit 0.
for c in "info $TINY" "grammar --json --print" "tokenize -m $TINY -p hello" "-m $TINY -p hello -n 200 --ignore-eos"; do
    # shellcheck disable=SC2086
    "$BIN" $c 2>"$TMP/err" | head -c1 >/dev/null
    rc=${PIPESTATUS[0]}
    if [ "$rc" = 0 ] && ! grep -q "cannot write" "$TMP/err"; then
        ok "$c | head -c1: exit 0, quiet"
    else
        bad "$c | head -c1: exit $rc, stderr: $(cat "$TMP/err")"
    fi
done

# Written in full: still 0.
"$BIN" info "$TINY" >"$TMP/info.txt" 2>/dev/null && [ -s "$TMP/info.txt" ] && ok "info to a file: exit 0" || bad "info to a file"
exit $fail
