#!/usr/bin/env bash
# Sessions from the command line: --prompt-cache (created, then reused by a prompt that starts
# the same; the output equals a run without it; --prompt-cache-ro leaves the file alone;
# --prompt-cache-all keeps the generated tokens too), refused files (truncated, garbage, another
# model, other cache types: one line, exit 1), and the REPL's /save and /load with the cache
# (FILE.kv: the resumed conversation is not evaluated again).
. "$(dirname "$0")/sh_common.sh"
MODEL=$M/stories260K.gguf
need "$MODEL" "$M/stories260K-f16.gguf"
P1="Once upon a time, there was a little girl"
P2="Once upon a time, there was a little girl named"

"$BIN" -m "$MODEL" -p "$P1" -n 16 --temp 0 --prompt-cache "$TMP/pc" -v >"$TMP/o1" 2>"$TMP/e1"
rc=$?
[ $rc -eq 0 ] && [ -s "$TMP/pc" ] && grep -q "none yet" "$TMP/e1" && ok "--prompt-cache creates the file" ||
    bad "--prompt-cache create: exit $rc; $(cat "$TMP/e1")"

"$BIN" -m "$MODEL" -p "$P2" -n 16 --temp 0 --prompt-cache "$TMP/pc" -v >"$TMP/o2" 2>"$TMP/e2"
"$BIN" -m "$MODEL" -p "$P2" -n 16 --temp 0 >"$TMP/o3" 2>/dev/null
n1=$(grep -o "prompt [0-9]* tokens" "$TMP/e1" | grep -o "[0-9]*")
n2=$(grep -o "prompt [0-9]* tokens" "$TMP/e2" | grep -o "[0-9]*")
if grep -q "13 of 14 prompt tokens reused" "$TMP/e2" && [ "$n2" -eq 1 ] && cmp -s "$TMP/o2" "$TMP/o3"; then
    ok "--prompt-cache reuses the common start ($n1 tokens evaluated, then $n2), same output"
else
    bad "--prompt-cache reuse: $(cat "$TMP/e2")"; cat "$TMP/o2" "$TMP/o3"
fi

# -ro: used, not written
cp "$TMP/pc" "$TMP/pc.before"
"$BIN" -m "$MODEL" -p "Tom had a dog" -n 4 --temp 0 --prompt-cache "$TMP/pc" --prompt-cache-ro >/dev/null 2>&1
cmp -s "$TMP/pc" "$TMP/pc.before" && ok "--prompt-cache-ro leaves the file" || bad "--prompt-cache-ro wrote the file"

# -all: prompt and generated tokens; the next run with that text as its prompt reuses them all
"$BIN" -m "$MODEL" -p "$P1" -n 12 --temp 0 --prompt-cache "$TMP/pa" --prompt-cache-all >"$TMP/oa" 2>/dev/null
"$BIN" -m "$MODEL" -p "$P1$(cat "$TMP/oa")" -n 4 --temp 0 --prompt-cache "$TMP/pa" -v >/dev/null 2>"$TMP/ea"
grep -Eq "(2[0-9]|1[0-9]) of [0-9]+ prompt tokens reused" "$TMP/ea" && ok "--prompt-cache-all: $(grep -o '[0-9]* of [0-9]* prompt tokens reused' "$TMP/ea")" ||
    bad "--prompt-cache-all: $(cat "$TMP/ea")"

# refused files: one line naming the file, exit 1, nothing on stdout
refuse() { # what, then llamalite arguments
    local what=$1
    shift
    "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "session file" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        ok "refused: $what ($(cat "$TMP/err"))"
    else
        bad "$what: exit $rc"; cat "$TMP/err"
    fi
}
head -c 77 "$TMP/pc" >"$TMP/trunc"
refuse "truncated" -m "$MODEL" -p "$P1" -n 2 --prompt-cache "$TMP/trunc"
printf 'garbage garbage garbage garbage garbage garbage garbage garbage' >"$TMP/garbage"
refuse "garbage" -m "$MODEL" -p "$P1" -n 2 --prompt-cache "$TMP/garbage"
refuse "another model" -m "$M/stories260K-f16.gguf" -p "$P1" -n 2 --prompt-cache "$TMP/pc"
refuse "other cache types" -m "$MODEL" -p "$P1" -n 2 -ctk q8_0 -ctv q8_0 --prompt-cache "$TMP/pc"

# REPL: /save writes the conversation and its cache; /load in a new process takes both back
printf 'Once upon a time there was a girl\n/save %s\n' "$TMP/chat.json" |
    "$BIN" -m "$MODEL" -i --temp 0 -n 8 -c 256 --chat-template chatml --log-disable >"$TMP/r1" 2>&1
printf '/load %s\nShe went home\n/stats\n' "$TMP/chat.json" |
    "$BIN" -m "$MODEL" -i --temp 0 -n 8 -c 256 --chat-template chatml --log-disable >"$TMP/r2" 2>&1
printf '/load %s\n' "$TMP/chat.json" | "$BIN" -m "$MODEL" -i -c 256 -ctk q8_0 --chat-template chatml --log-disable >"$TMP/r3" 2>&1
cached=$(grep -o "saved the cache of [0-9]* tokens" "$TMP/r1" | grep -o "[0-9]*")
if [ -s "$TMP/chat.json.kv" ] && grep -q "loaded the cache of $cached tokens" "$TMP/r2" &&
    grep -q "context .* tokens" "$TMP/r2" && grep -q "cache types F16/F16, this context uses Q8_0/F16" "$TMP/r3" &&
    grep -q "loaded 2 messages" "$TMP/r3"; then
    ok "/save and /load keep the cache ($cached tokens; $(grep -o 'last prompt .*new tokens' "$TMP/r2"))"
else
    bad "/save /load with the cache"; cat "$TMP/r1" "$TMP/r2" "$TMP/r3"
fi
exit $fail
