#!/usr/bin/env bash
# llamalite quantize / imatrix / perplexity --kl-divergence end to end:
# - quantize tiny.gguf: summary line, the result runs, bad arguments and requantizing refused;
# - --target-bpw lands within 1% below the budget and prints the mixture;
# - imatrix on stories260K writes a file that quantize --imatrix accepts;
# - KL divergence of a model against itself is ~0 with 100% top-1 agreement; F16 and Q8_0
#   copies of it diverge a little, Q2_K more;
# - --target-bpw at the size of the Q4_0 mixture (same imatrix) diverges less than Q4_0;
# - the progress bar only on a terminal; one-line errors with a non-zero exit for a missing
#   model, an unreadable imatrix, an unwritable imatrix output, a missing base file.
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
BUILD=${LLAMALITE_BUILD:-build}
SHARED=${LLAMALITE_SHARED:-../shared}
TINY=$BUILD/tiny.gguf
[ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 77; }
[ -f "$TINY" ] || { echo "no $TINY"; exit 77; }
DIR=$(mktemp -d "$BUILD/test_quantize_cli.XXXXXX") || exit 1
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

out=$("$BIN" quantize "$TINY" "$DIR/t-q8.gguf" Q8_0 2 2>/dev/null)
if [ $? -eq 0 ] && printf '%s' "$out" | grep -q "weights .* MiB -> .* MiB (file .* MiB), .* -> .* bits per weight" && printf '%s' "$out" | grep -q "file type 7"; then
    ok "quantize Q8_0: $out"
else
    bad "quantize Q8_0: $out"
fi
gen=$("$BIN" -m "$DIR/t-q8.gguf" -p "Once upon" -n 4 --temp 0 2>/dev/null)
[ $? -eq 0 ] && [ -n "$gen" ] && ok "the Q8_0 model runs" || bad "the Q8_0 model does not run"

"$BIN" quantize "$TINY" "$DIR/x.gguf" >/dev/null 2>&1 && bad "no TYPE accepted" || ok "no TYPE refused"
msg=$("$BIN" quantize "$TINY" "$DIR/x.gguf" Q9_K 2>&1) && bad "unknown type accepted" || ok "unknown type refused: $msg"
msg=$("$BIN" quantize "$DIR/t-q8.gguf" "$DIR/x.gguf" Q4_0 2>&1) && bad "requantized without the flag" || ok "requantize refused: $msg"
"$BIN" quantize --allow-requantize "$DIR/t-q8.gguf" "$DIR/x.gguf" Q4_0 >/dev/null 2>&1 && ok "--allow-requantize" || bad "--allow-requantize failed"
"$BIN" quantize "$TINY" "$TINY" Q4_0 >/dev/null 2>&1 && bad "overwrote its input" || ok "output = input refused"
"$BIN" quantize "$TINY" "$DIR/x.gguf" 8 >/dev/null 2>&1 && ok "type by number (8 = Q5_0)" || bad "type by number refused"

# An error is one line on stderr, nothing on stdout, a non-zero exit.
one_line_error() { # what, command...
    local what=$1; shift
    local so se rc
    so=$("$@" 2>"$DIR/err.txt"); rc=$?
    se=$(cat "$DIR/err.txt")
    if [ $rc -ne 0 ] && [ -z "$so" ] && [ "$(printf '%s\n' "$se" | grep -c .)" -eq 1 ] && printf '%s' "$se" | grep -q '^llamalite: '; then
        ok "$what: $se"
    else
        bad "$what: exit $rc, stdout '$so', stderr '$se'"
    fi
}
printf 'not an imatrix' > "$DIR/junk.dat"
one_line_error "missing model" "$BIN" quantize "$DIR/none.gguf" "$DIR/x.gguf" Q4_0
one_line_error "not a GGUF" "$BIN" quantize "$DIR/junk.dat" "$DIR/x.gguf" Q4_0
one_line_error "missing imatrix" "$BIN" quantize --imatrix "$DIR/none.dat" "$TINY" "$DIR/x.gguf" Q4_0
one_line_error "bad imatrix" "$BIN" quantize --imatrix "$DIR/junk.dat" "$TINY" "$DIR/x.gguf" Q4_0
one_line_error "unwritable output" "$BIN" quantize "$TINY" "$DIR/no/such/dir/x.gguf" Q4_0
one_line_error "imatrix output unwritable" "$BIN" imatrix -m "$TINY" -f "$DIR/junk.dat" -o "$DIR/no/such/dir/x.dat"
one_line_error "missing base file" "$BIN" perplexity -m "$TINY" --kl-divergence-base "$DIR/none.kld" --kl-divergence

# The progress bar (carriage returns) only on a terminal.
"$BIN" quantize "$TINY" "$DIR/x.gguf" Q8_0 2 >/dev/null 2>"$DIR/err.txt"
if grep -q "$(printf '\r')" "$DIR/err.txt"; then bad "progress bar without a terminal"; else ok "no progress bar without a terminal"; fi
if command -v script >/dev/null 2>&1; then
    script -qc "'$BIN' quantize '$TINY' '$DIR/x.gguf' Q8_0 2" /dev/null > "$DIR/pty.txt" 2>&1 </dev/null
    if grep -q "$(printf '\r')quantize \[" "$DIR/pty.txt" && grep -q "bits per weight" "$DIR/pty.txt"; then
        ok "progress bar and summary on a terminal"
    else
        bad "on a terminal: $(tr '\r' '|' < "$DIR/pty.txt")"
    fi
else
    echo "skip: no 'script' for the terminal check"
fi

out=$("$BIN" quantize --target-bpw 5.5 "$TINY" "$DIR/t-target.gguf" 2 2>/dev/null)
bpw=$(printf '%s\n' "$out" | sed -n 's/.* -> \([0-9.]*\) bits per weight.*/\1/p')
if [ -n "$bpw" ] && awk -v b="$bpw" 'BEGIN { exit !(b <= 5.5 && b >= 5.445) }' && printf '%s' "$out" | grep -q "^mixture:"; then
    ok "--target-bpw 5.5: $bpw bits per weight"
else
    bad "--target-bpw 5.5: $out"
fi

MODEL=$SHARED/models/stories260K.gguf
TEXT=$SHARED/text/war-and-peace-30k.txt
if [ -f "$MODEL" ] && [ -f "$TEXT" ]; then
    out=$("$BIN" imatrix -m "$MODEL" -f "$TEXT" -o "$DIR/s.imatrix" -c 128 --chunks 4 -t 2 2>/dev/null)
    if [ $? -eq 0 ] && printf '%s' "$out" | grep -q "^imatrix: 35 entries from 4 chunks"; then
        ok "imatrix: $out"
    else
        bad "imatrix: $out"
    fi
    out=$("$BIN" quantize --imatrix "$DIR/s.imatrix" "$MODEL" "$DIR/s-q4.gguf" Q4_0 2 2>&1)
    [ $? -eq 0 ] && ok "quantize --imatrix" || bad "quantize --imatrix: $out"
    q4_bpw=$(printf '%s\n' "$out" | sed -n 's/.* -> \([0-9.]*\) bits per weight.*/\1/p')
    "$BIN" info "$DIR/s-q4.gguf" 2>/dev/null | grep -q "quantize.imatrix.entries_count = 35" && ok "imatrix metadata" || bad "no imatrix metadata"

    "$BIN" perplexity -m "$MODEL" -f "$TEXT" -c 128 --chunks 8 --kl-divergence-base "$DIR/base.kld" -t 2 >/dev/null 2>&1 \
        || bad "--kl-divergence-base failed"
    kld() { "$BIN" perplexity -m "$1" --kl-divergence-base "$DIR/base.kld" --kl-divergence -t 2 2>/dev/null; }
    field() { printf '%s\n' "$1" | sed -n "s/^$2 *: *\([-0-9.]*\).*/\1/p"; }
    self=$(kld "$MODEL")
    k=$(field "$self" "Mean KLD"); top=$(field "$self" "Same top p")
    if [ -n "$k" ] && awk -v k="$k" -v t="$top" 'BEGIN { exit !(k < 1e-5 && t == 100) }'; then
        ok "self: KLD $k, top-1 $top%"
    else
        bad "self: $self"
    fi
    "$BIN" quantize "$MODEL" "$DIR/s-q2.gguf" Q2_K 2 >/dev/null 2>&1
    "$BIN" quantize "$MODEL" "$DIR/s-q8.gguf" Q8_0 2 >/dev/null 2>&1
    k8=$(field "$(kld "$DIR/s-q8.gguf")" "Mean KLD")
    k2=$(field "$(kld "$DIR/s-q2.gguf")" "Mean KLD")
    if [ -n "$k8" ] && [ -n "$k2" ] && awk -v a="$k8" -v b="$k2" 'BEGIN { exit !(a > 0 && a < b) }'; then
        ok "KLD Q8_0 $k8 < Q2_K $k2"
    else
        bad "KLD Q8_0 '$k8', Q2_K '$k2'"
    fi
    # The planner at the Q4_0 mixture's size, same imatrix: less damage than the fixed mixture.
    out=$("$BIN" quantize --imatrix "$DIR/s.imatrix" --target-bpw "$q4_bpw" "$MODEL" "$DIR/s-plan.gguf" 2 2>/dev/null)
    plan_bpw=$(printf '%s\n' "$out" | sed -n 's/.* -> \([0-9.]*\) bits per weight.*/\1/p')
    kq=$(field "$(kld "$DIR/s-q4.gguf")" "Mean KLD")
    kp=$(field "$(kld "$DIR/s-plan.gguf")" "Mean KLD")
    if [ -n "$kq" ] && [ -n "$kp" ] && [ -n "$plan_bpw" ] && awk -v a="$kp" -v b="$kq" -v x="$plan_bpw" -v y="$q4_bpw" \
        'BEGIN { exit !(a > 0 && a < b && x <= y && x >= 0.99 * y) }'; then
        ok "--target-bpw $q4_bpw: $plan_bpw bpw, KLD $kp < Q4_0's $kq"
    else
        bad "--target-bpw '$q4_bpw': '$plan_bpw' bpw, KLD '$kp', Q4_0's '$kq'"
    fi
    msg=$("$BIN" perplexity -m "$MODEL" --kl-divergence-base "$TINY" --kl-divergence 2>&1) && bad "a GGUF read as a base file" \
        || ok "not a base file: $msg"
else
    echo "skip: no shared data for the imatrix and KL-divergence parts"
fi

[ $fail -eq 0 ] && rm -rf "$DIR"
exit $fail
