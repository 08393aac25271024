#!/usr/bin/env bash
# llamalite info on the shared models: the tensor table of mixed-types.gguf lists all 128
# tensors with the types the shared README gives per layer and the types and dims of the
# reference's golden file; metadata lines, totals, --full, --help and usage errors.
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
SHARED=${LLAMALITE_SHARED:-../shared}
[ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 77; }
[ -f "$SHARED/models/mixed-types.gguf" ] || { echo "no shared models in $SHARED"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # check DESCRIPTION CONDITION-STATUS
    if [ "$2" -eq 0 ]; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}

# The tensor table: the lines between the "name type dims size" header and the blank line.
table() { awk '/^name +type +dims +size$/ {on=1; next} on && /^$/ {exit} on' "$1"; }

MIXED=$SHARED/models/mixed-types.gguf
"$BIN" info "$MIXED" >"$TMP/mixed" 2>"$TMP/err"
check "info mixed-types exits 0 quietly" $(( $? != 0 || $(wc -c <"$TMP/err") != 0 ))
table "$TMP/mixed" >"$TMP/mixed.table"
n=$(wc -l <"$TMP/mixed.table")
check "mixed-types: 128 tensor rows (got $n)" $(( n != 128 ))
grep -q '^128 tensors, ' "$TMP/mixed"
check "mixed-types: totals say 128 tensors" $?

# Per-layer types from the shared README; norms stay F32.
types=(Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K F16 BF16 IQ4_NL IQ4_XS)
bad=0
for l in $(seq 0 13); do
    for m in attn_q attn_k attn_v attn_output ffn_gate ffn_up ffn_down; do
        t=$(awk -v n="blk.$l.$m.weight" '$1 == n {print $2}' "$TMP/mixed.table")
        [ "$t" = "${types[$l]}" ] || { echo "    blk.$l.$m.weight: '$t', want ${types[$l]}"; bad=1; }
    done
    for m in attn_norm ffn_norm; do
        t=$(awk -v n="blk.$l.$m.weight" '$1 == n {print $2}' "$TMP/mixed.table")
        [ "$t" = F32 ] || { echo "    blk.$l.$m.weight: '$t', want F32"; bad=1; }
    done
done
check "mixed-types: every layer weight has its README type, norms F32" $bad

# Types and dims of the reference's golden file (token_embd and every attn_q).
bad=0; count=0
while read -r name type ne0 ne1; do
    row=$(awk -v n="$name" '$1 == n {print $2, $3, $4}' "$TMP/mixed.table")
    want="$type [$ne0, $ne1]"
    [ "$row" = "$want" ] || { echo "    $name: '$row', want '$want'"; bad=1; }
    count=$((count + 1))
done < <(grep -o '"[A-Za-z0-9_.]*": {"type": "[A-Z0-9_]*", "ne": \[[0-9]*, [0-9]*\]' \
             "$SHARED/golden/dequant-mixed-types.json" | tr -d '"{}[],:' | sed 's/ type / /; s/ ne / /')
check "mixed-types: $count tensors match the golden types and dims" $(( bad != 0 || count != 15 ))

grep -Eq '^str +general\.architecture = "llama"$' "$TMP/mixed"
check "mixed-types: general.architecture line" $?
grep -Eq '^arr\[str\] +tokenizer\.ggml\.tokens = \[".*", ".*", ".*", \.\.\. 32000 items\]$' "$TMP/mixed"
check "mixed-types: long token array abbreviated" $?
# Every value's type is shown.
grep -Eq '^arr\[f32\] +tokenizer\.ggml\.scores = \[' "$TMP/mixed" &&
    grep -Eq '^arr\[i32\] +tokenizer\.ggml\.token_type = \[' "$TMP/mixed" &&
    grep -Eq '^bool +tokenizer\.ggml\.add_bos_token = true$' "$TMP/mixed" &&
    grep -Eq '^f32 +llama\.attention\.layer_norm_rms_epsilon = 1e-05$' "$TMP/mixed" &&
    grep -Eq '^u32 +llama\.block_count = 14$' "$TMP/mixed"
check "mixed-types: value types shown" $?
keys=$(sed -n '1s/.*, \([0-9]*\) metadata keys.*/\1/p' "$TMP/mixed")
lines=$(awk 'NR > 2 && /^$/ {exit} NR > 2' "$TMP/mixed" | grep -c ' = ')
check "mixed-types: one line per metadata key ($lines of $keys)" $(( keys != lines || keys == 0 ))

# stories260K: metadata values and totals consistent with the table.
S=$SHARED/models/stories260K.gguf
"$BIN" info "$S" >"$TMP/s" 2>/dev/null
check "info stories260K exits 0" $?
grep -Eqx 'u32 +llama\.embedding_length = 64' "$TMP/s" && grep -Eqx 'u32 +llama\.block_count = 5' "$TMP/s" &&
    grep -Eqx 'u32 +llama\.attention\.head_count_kv = 4' "$TMP/s" &&
    grep -Eqx 'arr\[str\] +tokenizer\.ggml\.tokens = \["<unk>", "<s>", "</s>", \.\.\. 512 items\]' "$TMP/s"
check "stories260K: metadata values" $?
params=$(table "$TMP/s" | awk '{s = $0; sub(/^[^[]*\[/, "", s); sub(/\].*/, "", s); gsub(/,/, " ", s); n = split(s, d, " "); p = 1; for (i = 1; i <= n; i++) p *= d[i]; t += p} END {print t}')
grep -q "^48 tensors, .* $params parameters .* 32.00 bits per weight$" "$TMP/s"
check "stories260K: 48 tensors, $params parameters (the product of the dims), 32 bits per weight" $?
"$BIN" info "$SHARED/models/stories260K-f16.gguf" >"$TMP/s16" 2>/dev/null
bpw=$(sed -n 's/.*, \([0-9.]*\) bits per weight$/\1/p' "$TMP/s16")
check "stories260K-f16: $bpw bits per weight (F16 weights, F32 norms)" $(awk -v b="$bpw" 'BEGIN {print !(b > 16 && b < 16.2)}')
"$BIN" info --full "$S" >"$TMP/full" 2>/dev/null
grep -Eq '^arr\[str\] +tokenizer\.ggml\.tokens = \["<unk>", "<s>", "</s>", "<0x00>",' "$TMP/full" && ! grep -q 'items\]$' "$TMP/full"
check "--full prints arrays whole" $?

"$BIN" info "$SHARED/tokenizer/ggml-vocab-llama-bpe.gguf" >"$TMP/v" 2>/dev/null
grep -q '^0 tensors, ' "$TMP/v" && grep -Eqx 'str +tokenizer\.ggml\.pre = "llama-bpe"' "$TMP/v"
check "vocab-only file: metadata, 0 tensors" $?

"$BIN" info --help >"$TMP/help" 2>&1
check "--help exits 0 with usage" $(( $? != 0 )) 
grep -q '^usage: llamalite info' "$TMP/help"
check "--help text" $?

# Usage and file errors: exit 1, one line on stderr, nothing on stdout.
printf 'GGUF\003\000\000\000' >"$TMP/short.gguf"
expect_error() {
    local what=$1 want=$2; shift 2
    "$BIN" info "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$?
    local lines=$(wc -l <"$TMP/err")
    grep -q -- "$want" "$TMP/err"
    local found=$?
    check "$what: $(head -c 200 "$TMP/err")" $(( rc != 1 || lines != 1 || found != 0 || $(wc -c <"$TMP/out") != 0 ))
}
expect_error "no file" "no file given"
expect_error "unknown option" "unknown option" --bogus "$S"
expect_error "two files" "one file at a time" "$S" "$S"
expect_error "missing file" "^llamalite: $TMP/none.gguf: " "$TMP/none.gguf"
expect_error "short file" "^llamalite: $TMP/short.gguf: .*too small" "$TMP/short.gguf"
expect_error "not GGUF" "^llamalite: $SHARED/README.md: .*magic" "$SHARED/README.md"

exit $fail
