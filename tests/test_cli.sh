#!/usr/bin/env bash
# Error handling of the llamalite binary, self-contained (uses build/tiny.gguf from mktiny):
# every bad flag, missing or broken file exits with status 1 and exactly one line on stderr,
# and writes nothing on stdout. Also: the tiny model generates, bench prints its JSON.
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
BUILD=${LLAMALITE_BUILD:-build}
TINY=$BUILD/tiny.gguf
[ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 77; }
[ -f "$TINY" ] || { echo "no tiny model at $TINY"; exit 77; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

# expect_error DESCRIPTION ARGS...: status 1, one line on stderr, empty stdout.
expect_error() {
    local what=$1; shift
    "$BIN" "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    local rc=$? lines
    lines=$(wc -l <"$TMP/err")
    if [ $rc -ne 1 ] || [ "$lines" -ne 1 ] || [ -s "$TMP/out" ]; then
        echo "FAIL: $what: exit $rc, $lines stderr line(s), $(wc -c <"$TMP/out") stdout bytes"
        sed 's/^/    /' "$TMP/err" | head -5
        fail=1
    else
        echo "ok: $what: $(cat "$TMP/err")"
    fi
}

printf 'not a gguf file at all\n' >"$TMP/bad.gguf"
head -c 100 "$TINY" >"$TMP/truncated.gguf"
LONG=$(printf 'hello world %.0s' $(seq 1 200))

expect_error "missing model file"      -m "$TMP/nope.gguf" -p hi -n 4
expect_error "not a GGUF file"         -m "$TMP/bad.gguf" -p hi -n 4
expect_error "truncated GGUF"          -m "$TMP/truncated.gguf" -p hi -n 4
expect_error "no model"                -p hi
expect_error "bad -n"                  -m "$TINY" -p hi -n abc
expect_error "-n without value"        -m "$TINY" -p hi -n
expect_error "bad --temp"              -m "$TINY" -p hi --temp hot
expect_error "bad --top-p"             -m "$TINY" -p hi --top-p 2
expect_error "bad -c"                  -m "$TINY" -p hi -c -5
expect_error "bad -t"                  -m "$TINY" -p hi -t 1x
expect_error "bad --seed"              -m "$TINY" -p hi --seed -7
expect_error "bad --cache-type-k"      -m "$TINY" -p hi --cache-type-k q9
expect_error "unknown flag"            -m "$TINY" -p hi --frobnicate
expect_error "missing prompt file"     -m "$TINY" -f "$TMP/nope.txt"
expect_error "prompt longer than ctx"  -m "$TINY" -p "$LONG" -c 64 -n 4
expect_error "unknown command"         frobnicate
expect_error "trace --lora"            trace -m "$TINY" -p hi -n 2 --lora "$TMP/x.gguf"
expect_error "trace without prompt"    trace -m "$TINY"
expect_error "trace bad --top"         trace -m "$TINY" -p hi --top 0
expect_error "perplexity missing text" perplexity -m "$TINY" -f "$TMP/nope.txt"
expect_error "perplexity short text"   perplexity -m "$TINY" -p "hi there" -c 64
expect_error "bench bad -o"            bench -m "$TINY" -o xml
expect_error "bench bad -p"            bench -m "$TINY" -p 12,x
if [ -x "$BUILD/mktiny" ]; then
    "$BUILD/mktiny" "$TMP/gptj.gguf" --arch gptj
    expect_error "unsupported architecture" -m "$TMP/gptj.gguf" -p hi -n 4
fi

# The tiny model runs: exit 0, text on stdout, the summary on stderr.
if "$BIN" -m "$TINY" -p hi -n 20 -s 1 >"$TMP/out" 2>"$TMP/err" && [ -s "$TMP/out" ] &&
   grep -q "generation 20 tokens" "$TMP/err"; then
    echo "ok: tiny model generates: $(head -c 80 "$TMP/out" | tr '\n' ' ')"
else
    echo "FAIL: tiny model generation"; cat "$TMP/err"; fail=1
fi
# --log-disable: nothing at all on stderr.
"$BIN" -m "$TINY" -p hi -n 5 --log-disable >"$TMP/out" 2>"$TMP/err"
if [ $? -eq 0 ] && [ ! -s "$TMP/err" ]; then echo "ok: --log-disable is silent"
else echo "FAIL: --log-disable wrote to stderr:"; cat "$TMP/err"; fail=1; fi
# Same seed, same text.
"$BIN" -m "$TINY" -p hi -n 30 -s 7 --log-disable >"$TMP/a"
"$BIN" -m "$TINY" -p hi -n 30 -s 7 --log-disable >"$TMP/b"
if cmp -s "$TMP/a" "$TMP/b"; then echo "ok: seeded sampling is reproducible"
else echo "FAIL: same seed gave different text"; fail=1; fi
# -n 0 generates nothing.
out=$("$BIN" -m "$TINY" -p hi -n 0 --log-disable)
if [ $? -eq 0 ] && [ -z "$out" ]; then echo "ok: -n 0"; else echo "FAIL: -n 0 printed '$out'"; fail=1; fi
# --echo of a prompt with invalid UTF-8: stdout stays valid UTF-8 (bad bytes become U+FFFD).
if command -v iconv >/dev/null; then
    "$BIN" -m "$TINY" -p "$(printf 'a\xff\xc3b \xed\xa0\x80 end')" -n 10 -s 1 --echo --log-disable >"$TMP/out"
    if iconv -f UTF-8 -t UTF-8 "$TMP/out" >/dev/null 2>&1 && grep -q "end" "$TMP/out"; then
        echo "ok: --echo keeps stdout valid UTF-8"
    else
        echo "FAIL: --echo wrote invalid UTF-8"; od -c "$TMP/out" | head -3; fail=1
    fi
fi
# bench -o json has the fields llama-bench's consumers read.
if "$BIN" bench -m "$TINY" -p 16 -n 4 -r 2 -t 1 -o json >"$TMP/bench.json" 2>"$TMP/err"; then
    for k in n_prompt n_gen n_threads avg_ts stddev_ts; do
        [ "$(grep -c "\"$k\"" "$TMP/bench.json")" -eq 2 ] || { echo "FAIL: bench json lacks $k"; fail=1; }
    done
    echo "ok: bench -o json"
else
    echo "FAIL: bench"; cat "$TMP/err"; fail=1
fi
# trace prints one JSON line.
if "$BIN" trace -m "$TINY" -p hi -n 3 --top 4 >"$TMP/trace" && [ "$(wc -l <"$TMP/trace")" -eq 1 ] &&
   grep -q '^{"prompt":"hi","prompt_tokens":\[1,' "$TMP/trace" && [ "$(grep -o '"token":' "$TMP/trace" | wc -l)" -eq 3 ]; then
    echo "ok: trace"
else
    echo "FAIL: trace output"; cat "$TMP/trace"; fail=1
fi
exit $fail
