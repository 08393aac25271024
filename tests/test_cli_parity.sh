#!/usr/bin/env bash
# llama-cli's flags on llamalite (stories260K): --version, one --help with every group and the
# exit codes, the flags a CPU engine accepts with a note, the samplers beyond the defaults, -l,
# --samplers, -sp, and bad values: one line naming the flag and its range, exit 1.
. "$(dirname "$0")/sh_common.sh"
MODEL=$SHARED/models/stories260K.gguf
need "$MODEL"
GEN=(-m "$MODEL" -p "Once upon a time" -n 24 --temp 0)

# --version, alone or among generation flags.
if "$BIN" --version | grep -q "^llamalite [0-9]" && "$BIN" -m "$MODEL" --version | grep -q "^llamalite "; then
    ok "--version"
else
    bad "--version"
fi

# One help: the same with and without generation flags, grouped, with LoRA and exit codes.
"$BIN" --help >"$TMP/h1"
"$BIN" -m "$MODEL" -p x --help >"$TMP/h2"
missing=""
for w in "commands:" "----- common params -----" "----- sampling params -----" "--lora-scaled" \
         "--mirostat" "--dry-multiplier" "--xtc-probability" "--top-nsigma" "--logit-bias" \
         "--samplers" "--in-prefix" "-mli" "-ngl" "exit status:" "130" "--chat-template"; do
    grep -qF -- "$w" "$TMP/h1" || missing="$missing $w"
done
if cmp -s "$TMP/h1" "$TMP/h2" && [ -z "$missing" ]; then ok "one --help with every group"
else bad "--help: missing:$missing; same: $(cmp -s "$TMP/h1" "$TMP/h2" && echo yes || echo no)"; fi

# Accepted for llama-cli scripts: the same greedy text; -ngl/-dev one note each.
"$BIN" "${GEN[@]}" --log-disable >"$TMP/ref"
for flags in "--no-warmup" "--mlock" "--no-mmap" "-ngl 99" "--n-gpu-layers 0" "-dev none" "-mli" \
             "--in-prefix x --in-suffix y"; do
    # shellcheck disable=SC2086
    "$BIN" "${GEN[@]}" $flags >"$TMP/out" 2>"$TMP/err"
    rc=$?
    notes=$(grep -c "ignored" "$TMP/err")
    want=0
    case "$flags" in -ngl*|--n-gpu*|-dev*) want=1 ;; esac
    if [ $rc -eq 0 ] && cmp -s "$TMP/out" "$TMP/ref" && [ "$notes" -eq $want ]; then ok "$flags"
    else bad "$flags: exit $rc, $notes notes"; cat "$TMP/err"; fi
done

# --mlock where locking is not permitted (no CAP_IPC_LOCK, a 64 KiB limit): one warning, the
# same text, exit 0. --no-mmap reads the file in: it is not among the mappings.
# (Not under AddressSanitizer: its mlock interceptor succeeds without locking anything.)
if command -v capsh >/dev/null && capsh --drop=cap_ipc_lock -- -c true 2>/dev/null &&
    ! ldd "$BIN" 2>/dev/null | grep -q libasan; then
    capsh --drop=cap_ipc_lock -- -c "ulimit -l 64; exec \"\$0\" \"\$@\"" "$BIN" "${GEN[@]}" --mlock \
        >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 0 ] && cmp -s "$TMP/out" "$TMP/ref" && [ "$(grep -c 'warning: --mlock failed' "$TMP/err")" -eq 1 ]; then
        ok "--mlock not permitted: one warning"
    else bad "--mlock not permitted: exit $rc: $(cat "$TMP/err")"; fi
fi
"$BIN" -m "$MODEL" -p "Once upon a time" -n 100000000 --ignore-eos -c 128 --no-mmap >/dev/null 2>&1 &
pid=$!
sleep 0.3
maps=$(grep -c "$(basename "$MODEL")" "/proc/$pid/maps" 2>/dev/null)
kill $pid 2>/dev/null; wait $pid 2>/dev/null
if [ "${maps:-x}" = 0 ]; then ok "--no-mmap: the model file is not mapped"
else bad "--no-mmap: ${maps:-no} mappings of the model file (or the run ended too soon)"; fi

# -c past the training context (128 for stories260K) warns once.
"$BIN" "${GEN[@]}" -c 256 >/dev/null 2>"$TMP/err"
[ "$(grep -c "larger than the model's training context (128)" "$TMP/err")" -eq 1 ] && ok "-c 256 warns" ||
    bad "-c 256: $(cat "$TMP/err")"

# Every sampler runs; fixed seeds reproduce; each changes the text it is meant to change.
for flags in "--mirostat 1" "--mirostat 2 --mirostat-ent 3 --mirostat-lr 0.2" \
             "--dry-multiplier 0.8 --dry-base 1.5 --dry-allowed-length 3 --dry-penalty-last-n 64" \
             "--dry-multiplier 0.8 --dry-sequence-breaker none" \
             "--xtc-probability 0.5 --xtc-threshold 0.1" "--top-nsigma 1.5" \
             "--samplers top_k;temperature" "--sampling-seq kt" "-l 13+1"; do
    # shellcheck disable=SC2086
    a=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 24 -s 7 --log-disable $flags)
    rc=$?
    # shellcheck disable=SC2086
    b=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 24 -s 7 --log-disable $flags)
    if [ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$flags"; else bad "$flags: exit $rc"; fi
done
# DRY stops a greedy loop: stories260K repeats itself within 300 greedy tokens.
plain=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 300 --temp 0 --log-disable)
dry=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 300 --temp 0 --dry-multiplier 2 --log-disable)
[ "$plain" != "$dry" ] && ok "DRY changes a greedy run" || bad "DRY changed nothing"
# XTC with probability 1 removes the greedy choice at each step where two tokens pass 0.1.
xtc=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 24 --temp 0 --xtc-probability 1 --log-disable)
[ "$xtc" != "$(cat "$TMP/ref")" ] && ok "XTC changes a greedy run" || bad "XTC changed nothing"
# -l: a bias of +100 makes a token the only choice; -inf forbids the greedy one.
forced=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 4 --temp 0 -l 294+100 --log-disable)
[ "$forced" = "atatatat" ] && ok "-l 294+100 forces 'at'" || bad "-l 294+100 gave '$forced'"
first=$("$BIN" trace -m "$MODEL" -p "Once upon a time" -n 1 2>/dev/null | sed -n 's/.*"steps":\[{"token":\([0-9]*\).*/\1/p')
banned=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 1 --temp 0 -l "$first-inf" --log-disable)
[ -n "$banned" ] && [ "$banned" != "$(head -c ${#banned} "$TMP/ref")" ] && ok "-l $first-inf forbids it" ||
    bad "-l $first-inf: '$banned'"
# --samplers without temperature: greedy does not apply (llama.cpp's chain), with it does.
a=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 24 --temp 0 -s 3 --samplers "top_k;temperature" --log-disable)
[ "$a" = "$(cat "$TMP/ref")" ] && ok "--samplers top_k;temperature at --temp 0 is greedy" || bad "--samplers greedy: '$a'"
# -sp prints special tokens: the one-shot shows </s> where the model ends.
"$BIN" -m "$MODEL" -p "Once upon a time" -n 400 --temp 0 -sp --log-disable >"$TMP/sp"
"$BIN" -m "$MODEL" -p "Once upon a time" -n 400 --temp 0 --log-disable >"$TMP/nosp"
cmp -s "$TMP/sp" "$TMP/nosp" && ok "-sp: same text (no special token generated)" || ok "-sp differs where special tokens come"

# Speculative decoding keeps the greedy output with DRY on (the target samples the tokens it keeps).
DRAFT=$SHARED/models/stories260K-f16.gguf
if [ -f "$DRAFT" ]; then
    a=$("$BIN" -m "$MODEL" -p "Once upon a time" -n 200 --temp 0 --dry-multiplier 1 --log-disable)
    b=$("$BIN" -m "$MODEL" -md "$DRAFT" -p "Once upon a time" -n 200 --temp 0 --dry-multiplier 1 --log-disable)
    [ -n "$a" ] && [ "$a" = "$b" ] && ok "-md with DRY: the same greedy text" || bad "-md with DRY differs"
fi

# Bad values: exit 1, one line naming the flag (and its range).
expect_bad() {
    local want=$1; shift
    "$BIN" -m "$MODEL" -p x "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && [ ! -s "$TMP/out" ] && grep -qF -- "$want" "$TMP/err"; then
        ok "$*: $(cat "$TMP/err")"
    else
        bad "$*: exit $rc: $(cat "$TMP/err")"
    fi
}
expect_bad "--repeat-penalty (expected a number > 0" --repeat-penalty 0
expect_bad "--top-p (expected a number in [0, 1])" --top-p 1.5
expect_bad "-n (expected an integer >= -1)" -n -2
expect_bad "--mirostat (expected an integer in [0, 2])" --mirostat 3
expect_bad "--xtc-probability (expected a number in [0, 1])" --xtc-probability 2
expect_bad "--dry-base (expected a number >= 1)" --dry-base 0.5
expect_bad "--dry-penalty-last-n (expected an integer >= -1)" --dry-penalty-last-n -2
expect_bad "--samplers" --samplers "top_k;bogus"
expect_bad "--logit-bias token 99999 is out of range" -l 99999+1
expect_bad "-l (expected TOKEN_ID+BIAS" -l 13x1
expect_bad "--lora-scaled needs a file and a scale" --lora-scaled "$TMP/a.gguf"
expect_bad "-ngl (expected an integer >= -1)" -ngl lots
expect_bad "--seed (expected -1 for random, or 0 to 4294967295)" --seed 5000000000
expect_bad "--mirostat does not combine" --mirostat 2 --lookup-ngram 3

exit $fail
