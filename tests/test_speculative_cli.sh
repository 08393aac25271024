#!/usr/bin/env bash
# Speculative decoding through the CLI: greedy output byte-identical to plain decoding with a
# draft model (mixed-base-q8_0 for mixed-types; stories260K-f16 for stories260K; a target's
# own first layers, which the target then takes from the draft; the draft's logits from a
# 4-bit copy of its head, and with --draft-full-head from the head), with prompt lookup, with a grammar, with penalties, across context shifts and with --ignore-eos; the
# statistics line; `bench -md` and `bench --lookup-ngram`; vocabulary mismatch and bad flag
# values give one-line errors.
. "$(dirname "$0")/sh_common.sh"
need "$M/mixed-types.gguf"

# same NAME PLAIN-ARGS... -- SPECULATIVE-ARGS...: both runs succeed and print the same bytes.
same() {
    local name=$1
    shift
    local -a plain=() spec=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do plain+=("$1"); shift; done
    shift
    spec=("$@")
    "$BIN" "${plain[@]}" >"$TMP/a" 2>"$TMP/a.err" || { bad "$name: plain run failed"; tail -2 "$TMP/a.err"; return; }
    "$BIN" "${plain[@]}" "${spec[@]}" >"$TMP/b" 2>"$TMP/b.err" || { bad "$name: speculative run failed"; tail -2 "$TMP/b.err"; return; }
    if ! cmp -s "$TMP/a" "$TMP/b"; then
        bad "$name: output differs from plain decoding"; return
    fi
    local st
    st=$(grep -o "drafted [0-9]*, accepted [0-9]* ([0-9.]*%)" "$TMP/b.err")
    [ -n "$st" ] || { bad "$name: no statistics line"; return; }
    ok "$name: $(wc -c <"$TMP/a") identical bytes; $st"
}

P="Once upon a time, in a land far away"
REP="Once upon a time, there was a little girl named Lily. She loved to play with her ball. One day, Lily went to the park with her ball. Once upon a time, there was a little girl named Lily. She loved to"
same "mixed-types, draft mixed-base-q8_0" -m "$M/mixed-types.gguf" -p "$P" -n 80 --temp 0 -t 1 \
    -- -md "$M/mixed-base-q8_0.gguf"
same "mixed-types, draft, 2 threads, --draft-max 4 --draft-p-min 0" -m "$M/mixed-types.gguf" -p The -n 60 --temp 0 -t 2 \
    -- -md "$M/mixed-base-q8_0.gguf" --draft-max 4 --draft-p-min 0
same "mixed-types, --lookup-ngram 3" -m "$M/mixed-types.gguf" -p "$P" -n 80 --temp 0 -t 1 -- --lookup-ngram 3
same "stories260K, --lookup-ngram 3, repetitive prompt" -m "$M/stories260K.gguf" -p "$REP" -n 100 --temp 0 -- --lookup-ngram 3
same "stories260K, draft stories260K-f16" -m "$M/stories260K.gguf" -p "$P" -n 200 --temp 0 -- -md "$M/stories260K-f16.gguf"
grep -q "draft head: 4-bit copy" "$TMP/b.err" || bad "stories260K-f16 as draft: its F16 head was not copied to 4 bits"
same "stories260K, draft, --draft-full-head" -m "$M/stories260K.gguf" -p "$P" -n 200 --temp 0 \
    -- -md "$M/stories260K-f16.gguf" --draft-full-head
! grep -q "draft head: 4-bit copy" "$TMP/b.err" || bad "--draft-full-head: the head is still copied"
same "stories260K, draft, penalties" -m "$M/stories260K.gguf" -p "$P" -n 150 --temp 0 --repeat-penalty 1.3 \
    --repeat-last-n 32 -- -md "$M/stories260K-f16.gguf" --draft-p-min 0
same "stories260K, draft, context shifts (-c 64 -n 300 --ignore-eos)" -m "$M/stories260K.gguf" -p "$P" -n 300 -c 64 \
    --temp 0 --ignore-eos -- -md "$M/stories260K-f16.gguf" --draft-max 8
same "stories260K, lookup, context shifts" -m "$M/stories260K.gguf" -p "$REP" -n 300 -c 96 --temp 0 --ignore-eos \
    -- --lookup-ngram 2
same "stories260K, draft, grammar" -m "$M/stories260K.gguf" -p "$P" -n 60 --temp 0 --grammar-file grammars/list.gbnf \
    -- -md "$M/stories260K-f16.gguf" --draft-p-min 0
same "stories260K, draft, JSON" -m "$M/stories260K.gguf" -p "$P" -n 80 --temp 0 --json \
    -- -md "$M/stories260K-f16.gguf" --draft-p-min 0

# A layer-skip draft (the target's first layers, byte for byte): the target takes those layers
# for the drafted tokens from the draft (their residual stream and K/V rows); the output stays
# byte-identical, with many rejections (mixed-types' layers do not skip well) and without.
# shared NAME LAYERS ARGS...: as same, and the statistics line names the shared layers.
shared() {
    local name=$1 n=$2
    shift 2
    same "$name" "$@"
    grep -q "layers 0-$((n - 1)) shared with the draft" "$TMP/b.err" || bad "$name: layers 0-$((n - 1)) not shared"
}
if cut_layers "$M/stories260K.gguf" 2 "$TMP/s2.gguf" && cut_layers "$M/mixed-types.gguf" 2 "$TMP/m2.gguf"; then
    shared "stories260K, its first 2 layers as draft" 2 -m "$M/stories260K.gguf" -p "$P" -n 200 --temp 0 \
        -- -md "$TMP/s2.gguf"
    shared "stories260K, first 2 layers, 2 threads, --draft-max 4" 2 -m "$M/stories260K.gguf" -p "$P" -n 200 \
        --temp 0 -t 2 -- -md "$TMP/s2.gguf" --draft-max 4
    shared "mixed-types, its first 2 layers as draft" 2 -m "$M/mixed-types.gguf" -p "$P" -n 100 --temp 0 \
        -- -md "$TMP/m2.gguf" --draft-p-min 0
    shared "mixed-types, first 2 layers, 2 threads" 2 -m "$M/mixed-types.gguf" -p The -n 100 --temp 0 -t 2 \
        -- -md "$TMP/m2.gguf"
    shared "mixed-types as its own draft (every layer shared)" 14 -m "$M/mixed-types.gguf" -p "$P" -n 100 \
        --temp 0 -t 2 -- -md "$M/mixed-types.gguf"
    shared "stories260K, first 2 layers, context shifts" 2 -m "$M/stories260K.gguf" -p "$P" -n 300 -c 64 \
        --temp 0 --ignore-eos -- -md "$TMP/s2.gguf" --draft-max 8
    shared "stories260K, first 2 layers, penalties" 2 -m "$M/stories260K.gguf" -p "$P" -n 150 --temp 0 \
        --repeat-penalty 1.3 --repeat-last-n 32 -- -md "$TMP/s2.gguf" --draft-p-min 0
    shared "stories260K, first 2 layers, grammar" 2 -m "$M/stories260K.gguf" -p "$P" -n 60 --temp 0 \
        --grammar-file grammars/list.gbnf -- -md "$TMP/s2.gguf" --draft-p-min 0
    shared "mixed-types, first 2 layers, --draft-margin 0.05" 2 -m "$M/mixed-types.gguf" -p "$P" -n 100 --temp 0 \
        -t 2 -- -md "$TMP/m2.gguf" --draft-p-min 0 --draft-margin 0.05
    # A margin nothing reaches: every step drafts one token at most.
    same "stories260K, --draft-margin 1e9: one draft per step" -m "$M/stories260K.gguf" -p "$P" -n 60 --temp 0 \
        -- -md "$TMP/s2.gguf" --draft-p-min 0 --draft-margin 1e9
    st=$(grep -o 'drafted [0-9]*, accepted [0-9]* ([0-9.]*%), [0-9]* steps' "$TMP/b.err")
    [ -n "$st" ] && [ "$(echo "$st" | awk '{print $2}' | tr -d ,)" -le "$(echo "$st" | awk '{print $6}')" ] ||
        bad "--draft-margin 1e9 drafted more than one token per step: $st"
    same "stories260K, first 2 layers, --verify-batched (nothing shared)" -m "$M/stories260K.gguf" -p "$P" -n 1 \
        --temp 0 -- -md "$TMP/s2.gguf" --verify-batched
    ! grep -q "shared with the draft" "$TMP/b.err" || bad "--verify-batched shares layers"
else
    echo "no python3: the layer-skip draft cases are skipped"
fi

# Sampling runs (the distribution is checked in test_speculative.c): they work and end.
if "$BIN" -m "$M/stories260K.gguf" -p "$P" -n 100 --temp 0.8 -s 7 -md "$M/stories260K-f16.gguf" \
        >"$TMP/s" 2>"$TMP/s.err" && [ -s "$TMP/s" ]; then
    ok "sampling with a draft: $(grep -o 'accepted [0-9]* ([0-9.]*%)' "$TMP/s.err")"
else
    bad "sampling with a draft"; tail -2 "$TMP/s.err"
fi

# --verify-batched: the batched kernels verify (no byte-identity promised); it runs and drafts.
if "$BIN" -m "$M/stories260K.gguf" -p "$P" -n 100 --temp 0 -md "$M/stories260K-f16.gguf" --verify-batched \
        >"$TMP/v" 2>"$TMP/v.err" && [ -s "$TMP/v" ] && grep -q "accepted [1-9]" "$TMP/v.err"; then
    ok "--verify-batched: $(grep -o 'accepted [0-9]* ([0-9.]*%)' "$TMP/v.err")"
else
    bad "--verify-batched"; tail -2 "$TMP/v.err"
fi

# Vocabulary mismatch: one clear line naming the difference.
"$BIN" -m "$M/mixed-types.gguf" -md "$M/stories260K.gguf" -p hi -n 4 >"$TMP/o" 2>"$TMP/e"
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot draft for" "$TMP/e" && grep -q "512 tokens, the target has 32000" "$TMP/e"; then
    ok "vocab mismatch: $(grep 'cannot draft' "$TMP/e")"
else
    bad "vocab mismatch: exit $rc"; cat "$TMP/e"
fi

# bench -md: alternating runs, one table row whose output column says the greedy texts matched
# (a speculative text different from the target's own says DIFFER); prompt lookup too.
bench_row() {
    local name=$1
    shift
    "$BIN" bench -m "$M/mixed-types.gguf" -n 24 -r 2 -t 2 "$@" >"$TMP/bo" 2>"$TMP/be"
    local rc=$? rows
    rows=$(grep -c '^| tg ' "$TMP/bo")
    if [ $rc -eq 0 ] && [ "$rows" -eq 1 ] && grep -q '^| tg .*[0-9]x | *[0-9.]*% | *same |$' "$TMP/bo"; then
        ok "$name: $(grep '^| tg ' "$TMP/bo")"
    else
        bad "$name: exit $rc, $rows rows"; cat "$TMP/bo" "$TMP/be"
    fi
}
bench_row "bench -md" -md "$M/mixed-base-q8_0.gguf" --draft-p-min 0
bench_row "bench --lookup-ngram" --lookup-ngram 2 --spec-prompt "$REP"
"$BIN" bench -m "$M/mixed-types.gguf" -md "$M/stories260K.gguf" -n 4 -r 1 >"$TMP/o" 2>"$TMP/e"
rc=$?
if [ $rc -eq 1 ] && grep -q "cannot draft for" "$TMP/e"; then ok "bench, vocab mismatch: exit 1"; else bad "bench, vocab mismatch: exit $rc"; cat "$TMP/e"; fi

# Bad values and a missing draft file.
for args in "--draft-max -1" "--draft-max x" "--draft-p-min 1.5" "--draft-margin -1" "--draft-margin x" \
        "--lookup-ngram 0" "-md"; do
    # shellcheck disable=SC2086
    "$BIN" -m "$M/stories260K.gguf" -p hi $args >"$TMP/o" 2>"$TMP/e"
    rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/e")" -eq 1 ]; then ok "'$args': $(cat "$TMP/e")"; else bad "'$args': exit $rc"; cat "$TMP/e"; fi
done
"$BIN" -m "$M/stories260K.gguf" -p hi -md "$TMP/nonexistent.gguf" >"$TMP/o" 2>"$TMP/e"
rc=$?
if [ $rc -eq 1 ] && grep -q "draft model" "$TMP/e"; then ok "missing draft: $(tail -1 "$TMP/e")"; else bad "missing draft: exit $rc"; cat "$TMP/e"; fi

exit $fail
