#!/usr/bin/env bash
# llamalite tokenize end to end: every test vector of ../shared/tokenizer through the binary
# (-f, --no-bos), War and Peace through SPM, BOS handling, --parse-special, --pieces, -p/-f/stdin
# agreement, and one-line errors. Skips (77) without the shared data.
. "$(dirname "$0")/sh_common.sh"
TOK=$SHARED/tokenizer
need "$TOK/ggml-vocab-llama-spm.gguf"

# Every case of VOCAB's .inp/.out pair: the ids must be exactly the listed ones.
check_vectors() {
    local vocab=$1 gguf=$TOK/ggml-vocab-$1.gguf
    local n=0 nbad=0 lines=0 acc="" want got
    mapfile -t expected <"$gguf.out"
    while IFS= read -r line || [ -n "$line" ]; do
        if [ "$line" = "__ggml_vocab_test__" ]; then
            printf '%s' "$acc" >"$TMP/case"
            got=$("$BIN" tokenize -m "$gguf" -f "$TMP/case" --no-bos 2>"$TMP/err")
            want=${expected[$n]# }
            if [ "$got" != "$want" ]; then
                nbad=$((nbad + 1))
                [ $nbad -le 3 ] && bad "$vocab case $n: got '$got' want '$want' $(head -1 "$TMP/err")"
            fi
            n=$((n + 1)); lines=0; acc=""
            continue
        fi
        if [ $lines -eq 0 ]; then acc=$line; else acc+=$'\n'"$line"; fi
        lines=$((lines + 1))
    done <"$gguf.inp"
    [ $n -eq ${#expected[@]} ] || bad "$vocab: $n cases but ${#expected[@]} expected lines"
    [ $n -gt 0 ] || bad "$vocab: no cases read"
    echo "$vocab: $n cases, $nbad failed"
}

for v in llama-spm llama-bpe gpt-2 deepseek-llm falcon; do check_vectors "$v"; done

SPM=$TOK/ggml-vocab-llama-spm.gguf
BPE=$TOK/ggml-vocab-llama-bpe.gguf

# War and Peace (200 KB) whole through the CLI, SPM.
if [ -f "$SHARED/text/war-and-peace-200k.txt" ]; then
    "$BIN" tokenize -m "$SPM" -f "$SHARED/text/war-and-peace-200k.txt" --no-bos | tr ' ' '\n' >"$TMP/wp"
    cmp -s "$TMP/wp" "$TOK/wp-200k.llama-spm.tok" && echo "ok: war-and-peace-200k (spm)" ||
        bad "war-and-peace-200k through the CLI differs from wp-200k.llama-spm.tok"
fi

# BOS as the vocab says unless --no-bos.
out=$("$BIN" tokenize -m "$SPM" -p "Hello world")
[ "$out" = "1 15043 3186" ] && echo "ok: SPM adds BOS" || bad "SPM with BOS: '$out'"
out=$("$BIN" tokenize -m "$BPE" -p "Hello world")
[ "$out" = "128000 9906 1917" ] && echo "ok: llama-bpe adds BOS" || bad "llama-bpe with BOS: '$out'"

# Special tokens: text only, unless --parse-special.
plain=$("$BIN" tokenize -m "$BPE" -p "Hi<|eot_id|>" --no-bos)
special=$("$BIN" tokenize -m "$BPE" -p "Hi<|eot_id|>" --no-bos --parse-special)
[ "$special" = "13347 128009" ] && echo "ok: --parse-special" || bad "--parse-special: '$special'"
case " $plain " in
*" 128009 "*) bad "without --parse-special the control token was made: '$plain'" ;;
*) [ "$(echo "$plain" | wc -w)" -gt 2 ] && echo "ok: special text kept as text" || bad "plain: '$plain'" ;;
esac

# --pieces: one "id 'piece'" line per token.
"$BIN" tokenize -m "$BPE" -p "Hello world" --pieces >"$TMP/pieces"
printf "%6d '%s'\n" 128000 "<|begin_of_text|>" 9906 "Hello" 1917 " world" >"$TMP/want"
cmp -s "$TMP/pieces" "$TMP/want" && echo "ok: --pieces" || { bad "--pieces:"; cat "$TMP/pieces"; }

# -p, -f and standard input give the same ids; escapes in -p are processed as generation
# processes them (by default, and with -e), --no-escape keeps them.
printf 'tab\there\nnew line' >"$TMP/t"
a=$("$BIN" tokenize -m "$SPM" -f "$TMP/t")
b=$("$BIN" tokenize -m "$SPM" <"$TMP/t")
c=$("$BIN" tokenize -m "$SPM" -e -p 'tab\there\nnew line')
e=$("$BIN" tokenize -m "$SPM" -p 'tab\there\nnew line')
d=$("$BIN" tokenize -m "$SPM" --no-escape -p 'tab\there\nnew line')
[ "$a" = "$b" ] && [ "$a" = "$c" ] && [ "$a" = "$e" ] && [ "$a" != "$d" ] && echo "ok: -f, stdin, -e, -p agree" ||
    bad "-f '$a' stdin '$b' -e '$c' -p '$e' raw '$d'"

# --pieces stays one line per token: newline, quote, backslash and lone byte tokens escaped.
"$BIN" tokenize -m "$SPM" --no-bos -p "a\\nb'c\\\\\\xff" --pieces >"$TMP/pieces" 2>&1
n_ids=$("$BIN" tokenize -m "$SPM" --no-bos -p "a\\nb'c\\\\\\xff" | wc -w)
if [ "$(wc -l <"$TMP/pieces")" -eq "$n_ids" ] && grep -qx "  *13 '\\\\n'" "$TMP/pieces" &&
   grep -q "'\\\\xFF'" "$TMP/pieces" && grep -q "\\\\'" "$TMP/pieces" && grep -q "'\\\\\\\\'" "$TMP/pieces"; then
    echo "ok: --pieces escapes newline, quote, backslash and byte tokens"
else
    bad "--pieces ($n_ids ids):"; cat "$TMP/pieces"
fi

# Invalid UTF-8 in a file is tokenized (bytes fall back), not refused.
printf 'ok \xff\xfe \xc3 end' >"$TMP/bad"
out=$("$BIN" tokenize -m "$SPM" -f "$TMP/bad" --no-bos) && [ -n "$out" ] &&
    echo "ok: invalid UTF-8: $out" || bad "invalid UTF-8 input failed"

# Errors: exit 1, one line on stderr, nothing on stdout.
expect_error() {
    local what=$1; shift
    "$BIN" tokenize "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$? lines
    lines=$(wc -l <"$TMP/err")
    if [ $rc -ne 1 ] || [ "$lines" -ne 1 ] || [ -s "$TMP/out" ]; then
        bad "$what: exit $rc, $lines stderr line(s)"
    else
        echo "ok: $what: $(cat "$TMP/err")"
    fi
}
expect_error "no model" -p hi
expect_error "missing model file" -m "$TMP/nope.gguf" -p hi
expect_error "missing text file" -m "$SPM" -f "$TMP/nope.txt"
expect_error "unknown flag" -m "$SPM" -p hi --bogus

exit $fail
