#!/usr/bin/env bash
# Perplexity of stories260K on War and Peace with -c 128 must be within 0.5% of the reference
# tool's 48.8181; the output is one parseable line when stdout/stderr are not terminals.
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
SHARED=${LLAMALITE_SHARED:-../shared}
MODEL=$SHARED/models/stories260K.gguf
TEXT=$SHARED/text/war-and-peace-30k.txt
[ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 77; }
[ -f "$MODEL" ] && [ -f "$TEXT" ] || { echo "no shared data"; exit 77; }
REF=$(grep -o 'PPL = [0-9.]*' "$SHARED/golden/perplexity.txt" | grep -o '[0-9.]*$')
REF=${REF:-48.8181}

fail=0
for t in 1 2; do
    out=$("$BIN" perplexity -m "$MODEL" -f "$TEXT" -c 128 -t $t 2>/dev/null)
    rc=$?
    ppl=$(printf '%s\n' "$out" | sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- [0-9.]*$/\1/p')
    if [ $rc -ne 0 ] || [ -z "$ppl" ] || [ "$(printf '%s\n' "$out" | wc -l)" -ne 1 ]; then
        echo "FAIL: -t $t: exit $rc, output: $out"
        fail=1
        continue
    fi
    if awk -v a="$ppl" -v b="$REF" 'BEGIN { d = (a - b) / b; if (d < 0) d = -d; exit !(d <= 0.005) }'; then
        echo "ok: -t $t: $out (reference $REF)"
    else
        echo "FAIL: -t $t: PPL $ppl is not within 0.5% of $REF"
        fail=1
    fi
done
# -c 0 is the model's training context (128 for stories260K), as the help says.
a=$("$BIN" perplexity -m "$MODEL" -f "$TEXT" -c 0 --chunks 3 2>/dev/null)
b=$("$BIN" perplexity -m "$MODEL" -f "$TEXT" -c 128 --chunks 3 2>/dev/null)
if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "ok: -c 0 = the training context: $a"
else echo "FAIL: -c 0 gave '$a', -c 128 '$b'"; fail=1; fi
exit $fail
