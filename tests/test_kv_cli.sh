#!/usr/bin/env bash
# The cache flags from the command line: every -ctk/-ctv type runs (mixed K and V too), -fa alone
# and -fa on|off|auto (with greedy output equal between on and off on a trained model with an
# F16 cache), bad values refused with one line; bench -gp P,T, -d D and the cache columns; --swa-full
# (a prompt cache reused back past a sliding window: only with full-size window layers).
. "$(dirname "$0")/sh_common.sh"
MODEL=$M/stories260K.gguf
need "$MODEL"

for t in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 iq4_nl; do
    if "$BIN" -m "$MODEL" -p "Once upon a time" -n 8 --temp 0 -ctk "$t" -ctv "$t" >"$TMP/out" 2>"$TMP/err" && [ -s "$TMP/out" ]; then
        :
    else
        bad "-ctk/-ctv $t: $(cat "$TMP/err")"
    fi
done
[ $fail -eq 0 ] && ok "every cache type generates"
"$BIN" -m "$MODEL" -p "Once upon a time" -n 8 --temp 0 -ctk q8_0 -ctv q4_0 -fa >/dev/null 2>"$TMP/err" &&
    ok "-ctk q8_0 -ctv q4_0 -fa" || bad "mixed types: $(cat "$TMP/err")"

# -fa alone before another flag, and each value: the F16 cache gives the same greedy text
"$BIN" -m "$MODEL" -fa -p "Once upon a time" -n 24 --temp 0 >"$TMP/on" 2>/dev/null
"$BIN" -m "$MODEL" --flash-attn off -p "Once upon a time" -n 24 --temp 0 >"$TMP/off" 2>/dev/null
"$BIN" -m "$MODEL" -fa auto -p "Once upon a time" -n 24 --temp 0 >"$TMP/auto" 2>/dev/null
[ -s "$TMP/on" ] && cmp -s "$TMP/on" "$TMP/off" && cmp -s "$TMP/on" "$TMP/auto" && ok "-fa, -fa off, -fa auto: same greedy text" ||
    bad "-fa: '$(cat "$TMP/on")' vs '$(cat "$TMP/off")' vs '$(cat "$TMP/auto")'"

one_line_error() { # what, then arguments
    local what=$1
    shift
    "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && [ ! -s "$TMP/out" ] && ok "refused: $what ($(cat "$TMP/err"))" ||
        bad "$what: exit $rc; $(cat "$TMP/err")"
}
one_line_error "-ctk q3_k" -m "$MODEL" -p x -n 1 -ctk q3_k
one_line_error "-ctv missing" -m "$MODEL" -p x -n 1 -ctv
one_line_error "bench -gp 16" bench -m "$MODEL" -gp 16
one_line_error "bench -gp 16,x" bench -m "$MODEL" -gp 16,x

if "$BIN" bench -m "$MODEL" -p 0 -n 0 -gp 64,8 -r 1 -t 1 -ctk q8_0 -ctv q8_0 -fa on >"$TMP/b" 2>"$TMP/err" &&
    grep -q "tg8@pp64" "$TMP/b" && grep -q "q8_0 |   q8_0 |    1 |" "$TMP/b"; then
    ok "bench -gp 64,8 -ctk q8_0 -ctv q8_0 -fa on"
else
    bad "bench -gp: $(cat "$TMP/b" "$TMP/err")"
fi
one_line_error "bench -d x" bench -m "$MODEL" -d x
# -d: every pp and tg test once from an empty cache and once after 32 cached tokens
if "$BIN" bench -m "$MODEL" -p 16 -n 4 -d 0,32 -r 2 -t 1 -fa on >"$TMP/b" 2>"$TMP/err" &&
    grep -q "| *pp16 |" "$TMP/b" && grep -q "pp16 @ d32" "$TMP/b" && grep -q "tg4 @ d32" "$TMP/b" &&
    [ "$(grep -c "@ d32" "$TMP/b")" -eq 2 ]; then
    ok "bench -d 0,32"
else
    bad "bench -d: $(cat "$TMP/b" "$TMP/err")"
fi
# gemma2 (window 16 on even layers), batches of 8: window layers hold 23 rows, so a prompt that
# parts from the cached one after 11 tokens of 40 finds those layers' rows gone, unless
# --swa-full keeps them all.
SWA=$M/arch/gemma2.gguf
need "$SWA"
LONG="The quick brown fox jumps over the lazy dog and then runs far away into the deep dark forest where nobody can find it again until the morning sun rises over the hills"
SHORT="The quick brown fox jumps over the lazy cat"
for flag in "" --swa-full; do
    rm -f "$TMP/pc"
    "$BIN" -m "$SWA" -b 8 $flag --prompt-cache "$TMP/pc" -p "$LONG" -n 2 --temp 0 >/dev/null 2>&1
    "$BIN" -m "$SWA" -b 8 $flag --prompt-cache "$TMP/pc" -p "$SHORT" -n 2 --temp 0 2>"$TMP/err" >/dev/null
    grep -o "[0-9]* of [0-9]* prompt tokens reused" "$TMP/err" >"$TMP/reused_${flag:-window}"
done
if [ "$(cat "$TMP/reused_window")" = "0 of 12 prompt tokens reused" ] &&
    [ "$(cat "$TMP/reused_--swa-full")" = "11 of 12 prompt tokens reused" ]; then
    ok "--swa-full: the prompt cache reused back past the window ($(cat "$TMP/reused_--swa-full"); without: $(cat "$TMP/reused_window"))"
else
    bad "--swa-full: reused '$(cat "$TMP/reused_--swa-full")', without it '$(cat "$TMP/reused_window")'"
fi
exit $fail
