#!/usr/bin/env bash
# The REPL honours --json / --grammar: every reply of a piped conversation parses as JSON,
# and a bad grammar is refused with one line and exit 1.
set -u
bin=${LLAMALITE_BIN:?}
model=${LLAMALITE_SHARED:-../shared}/models/stories260K.gguf
[ -f "$model" ] || { echo "skipped: no $model"; exit 77; }
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 77; }
fail=0
for seed in 1 2 3 4 5; do
    out=$(printf 'Tell me a story\n' | "$bin" -m "$model" -i --json -n 80 -s $seed 2>/dev/null)
    if ! printf '%s' "$out" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null; then
        echo "FAIL: seed $seed: reply is not JSON: $out"; fail=1
    fi
done
# Two turns: the grammar restarts for each reply (both replies together are two objects).
out=$(printf 'one\ntwo\n' | "$bin" -m "$model" -i --grammar 'root ::= "yes" | "no"' -s 7 2>/dev/null)
words=$(printf '%s' "$out" | tr -s ' \n' '\n\n' | grep -cE '^(yes|no)$')
[ "$words" = 2 ] || { echo "FAIL: two constrained turns gave: $out"; fail=1; }
err=$(printf 'x\n' | "$bin" -m "$model" -i --grammar 'root ::= "a" b' 2>&1 >/dev/null); rc=$?
[ $rc = 1 ] && [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] && [[ $err == *"undefined rule"* ]] ||
    { echo "FAIL: bad grammar: rc=$rc err=$err"; fail=1; }
[ $fail = 0 ] && echo "ok: REPL replies follow the grammar"
exit $fail
