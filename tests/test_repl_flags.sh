#!/usr/bin/env bash
# The chat with llama-cli's flags and habits, stdin from a pipe (stories260K): -r hands the turn
# back, -p is the first message, -sys/--chat-template in one-shot, --in-prefix/--in-suffix, -if,
# -mli, /set keeps the random stream, piped JSON replies one per line, an over-long line ends
# only its turn, and a full context shifts the cache instead of evaluating the history again.
. "$(dirname "$0")/sh_common.sh"
MODEL=$SHARED/models/stories260K.gguf
need "$MODEL"
export XDG_STATE_HOME=$TMP/state HOME=$TMP # never touch the real history

# -r: the reply stops right after the reverse prompt (a word from the middle of the full reply;
# with -r the input ends with a newline, as llama-cli's does, so the reference has one too).
printf 'Once upon a time\n' | "$BIN" -m "$MODEL" -i --temp 0 -n 60 -r "never said" --log-disable >"$TMP/full"
word=$(tr -s ' .,!?\n' '\n' <"$TMP/full" | sed -n '8p')
printf 'Once upon a time\n' | "$BIN" -m "$MODEL" -i --temp 0 -n 60 -r "$word" --log-disable >"$TMP/out"
got=$(cat "$TMP/out")
if [ -n "$word" ] && [ "${got%"$word"}" != "$got" ] && [ ${#got} -lt $(($(wc -c <"$TMP/full") - 1)) ] &&
   [ "$(head -c ${#got} "$TMP/full")" = "$got" ]; then
    ok "-r '$word' ends the reply right after it"
else
    bad "-r '$word': '$got'"
fi

# -p is the first user message, also with a chat template (it was the system message before).
"$BIN" -m "$MODEL" -i --chat-template chatml -p "Hi" --temp 0 -n 8 --log-disable </dev/null >"$TMP/out" 2>&1
"$BIN" -m "$MODEL" -p "Hi" --chat-template chatml --temp 0 -n 8 --log-disable >"$TMP/one"
if [ -s "$TMP/out" ] && [ "$(cat "$TMP/out")" = "$(cat "$TMP/one")" ]; then
    ok "-cnv --chat-template -p: answered as the first message, as one-shot with the template"
else
    bad "-p in a chat: '$(cat "$TMP/out")' vs one-shot '$(cat "$TMP/one")'"
fi

# One-shot with -sys: the prompt is what 'llamalite template' renders (then generated from).
printf '[{"role":"system","content":"Be kind"},{"role":"user","content":"Hi"}]' >"$TMP/m.json"
"$BIN" template --chat-template chatml --messages "$TMP/m.json" --add-generation-prompt >"$TMP/rendered"
a=$("$BIN" -m "$MODEL" -p "Hi" -sys "Be kind" --chat-template chatml --temp 0 -n 12 --log-disable)
rendered=$(cat "$TMP/rendered"; printf x) # keep the final newline
b=$("$BIN" -m "$MODEL" -p "${rendered%x}" --no-escape --temp 0 -n 12 --log-disable)
c=$("$BIN" -m "$MODEL" -p "Hi" --temp 0 -n 12 --log-disable)
if [ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" != "$c" ]; then ok "one-shot -sys applies the template"
else bad "one-shot -sys: '$a' vs rendered '$b' vs plain '$c'"; fi
"$BIN" -m "$MODEL" -p "Hi" -sys "x" -n 2 >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "needs a chat template" "$TMP/err" && ok "one-shot -sys without a known template: refused" ||
    bad "-sys without template: $(cat "$TMP/err")"

# --in-prefix / --in-suffix wrap each input (newline after it), -if puts -p first, -mli joins lines
# until one ends in '/'.
printf 'hi\n/save %s\n' "$TMP/w.json" |
    "$BIN" -m "$MODEL" -if -p "Story:" --in-prefix "User: " --in-suffix "Bob:" -n 4 --temp 0 --log-disable >/dev/null
grep -q '"content": "Story:User: hi\\nBob:"' "$TMP/w.json" && ok "-if, --in-prefix, --in-suffix" ||
    bad "wrapped input: $(cat "$TMP/w.json")"
printf 'one\ntwo/\n/save %s\n' "$TMP/m2.json" | "$BIN" -m "$MODEL" -i -mli -n 2 --temp 0 --log-disable >/dev/null
grep -q '"content": "one\\ntwo"' "$TMP/m2.json" && [ "$(grep -c '"role": "user"' "$TMP/m2.json")" -eq 1 ] &&
    ok "-mli: lines up to one ending in '/' make one message" || bad "-mli: $(cat "$TMP/m2.json")"

# /set changes a setting without restarting the random stream; /set seed -1 is allowed.
printf 'Once\n/set top_k 40\nupon\n' | "$BIN" -m "$MODEL" -i -s 5 -n 12 --log-disable >"$TMP/a" 2>&1
printf 'Once\nupon\n' | "$BIN" -m "$MODEL" -i -s 5 -n 12 --log-disable >"$TMP/b" 2>&1
grep -v '^top_k = 40$' "$TMP/a" >"$TMP/a2"
cmp -s "$TMP/a2" "$TMP/b" && ok "/set keeps the random stream" || { bad "/set re-seeded:"; cat "$TMP/a" "$TMP/b"; }
printf '/set seed -1\n/set seed 7\n/set seed x\n/set top_p 2\n' | "$BIN" -m "$MODEL" -i --log-disable >"$TMP/out" 2>&1
grep -q '^seed = [0-9]*$' "$TMP/out" && grep -q '^seed = 7$' "$TMP/out" && grep -q "not a number: 'x'" "$TMP/out" &&
    grep -qF "invalid value '2' for top_p (expected [0, 1])" "$TMP/out" &&
    ok "/set seed -1, 7, x; top_p 2 states the range" || bad "/set seed: $(cat "$TMP/out")"

# Piped with a JSON constraint: one reply per line, even where the model writes newlines
# (token 13 is '\n', pushed up here; one-shot then writes some).
printf 'a\nb\nc\n' | "$BIN" -m "$MODEL" -i --json -l 13+10 -n 40 -s 1 --log-disable >"$TMP/out" 2>/dev/null
nl_plain=$(printf 'a\n' | "$BIN" -m "$MODEL" -p x --json -l 13+10 -n 40 -s 1 --log-disable 2>/dev/null | wc -l)
if [ "$(wc -l <"$TMP/out")" -eq 3 ] && [ "$nl_plain" -gt 0 ]; then ok "piped --json: one reply per line"
else bad "piped --json: $(wc -l <"$TMP/out") lines (one-shot had $nl_plain newlines)"; cat "$TMP/out"; fi

# An over-long piped line fails its own turn; the next line is still answered; exit 1.
long=$(for _ in $(seq 1 200); do printf 'word '; done)
printf 'hi\n%s\nthere\n' "$long" | "$BIN" -m "$MODEL" -i -c 64 -n 4 --temp 0 -v >"$TMP/out" 2>"$TMP/err"
rc=$?
turns=$(grep -c '^\[prompt: [0-9]* new tokens' "$TMP/err")
if [ $rc -eq 1 ] && [ "$turns" -eq 2 ] && grep -q "the context has 64" "$TMP/err"; then
    ok "over-long line: its turn fails, the next is answered, exit 1"
else
    bad "over-long line: exit $rc, $turns turns"; cat "$TMP/err"
fi

# A full context: older turns are dropped and their positions shifted out of the cache, so a
# turn evaluates only its own tokens (not the whole kept history again): with a template, and in
# plain continuation (no template: the cache's tokens are kept as they are, the kept text is not
# tokenized again), also with -r's llama-cli style.
full_context() { # NAME FLAGS...
    local name=$1; shift
    for i in $(seq 1 14); do echo "Tell me a story about the dog number $i please"; done |
        "$BIN" -m "$MODEL" -i -c 256 -n 24 --temp 0 -v "$@" >/dev/null 2>"$TMP/err"
    local rc=$? dropped shifted second max_new
    dropped=$(grep -c '^\[dropped' "$TMP/err")
    shifted=$(sed -n 's/.*; \([0-9]*\) cached tokens shifted out.*/\1/p' "$TMP/err" | awk '$1 > 0' | wc -l)
    # (A turn's own tokens: the message and the template's text around it, as the second turn had.)
    second=$(sed -n 's/^\[prompt: \([0-9]*\) new tokens.*/\1/p' "$TMP/err" | sed -n 2p)
    max_new=$(sed -n 's/^\[prompt: \([0-9]*\) new tokens.*/\1/p' "$TMP/err" | tail -n +2 | sort -n | tail -1)
    if [ $rc -eq 0 ] && [ "$dropped" -ge 3 ] && [ "$shifted" -eq "$dropped" ] && [ -n "$second" ] &&
       [ "${max_new:-999}" -le $((second + 4)) ]; then
        ok "full context, $name: $dropped shifts, at most $max_new new tokens a turn"
    else
        bad "full context, $name: exit $rc, $dropped drops, $shifted shifts, up to ${max_new:-?} new tokens a turn"
        grep -E '^\[(prompt|dropped)' "$TMP/err" | head -20
    fi
}
full_context chatml --chat-template chatml
full_context plain
full_context "plain -r" -r "User:"
full_context "plain -sys" -sys "You are a storyteller."

# Ctrl-C while a long message is evaluated (~30 s on one thread) stops it within seconds; the
# message is not sent and the next one is answered.
MIXED=$SHARED/models/mixed-types.gguf
if [ -f "$MIXED" ]; then
    mkfifo "$TMP/in"
    "$BIN" -i -m "$MIXED" -c 8192 -b 8192 -t 1 -n 2 --temp 0 -v <"$TMP/in" >"$TMP/c" 2>"$TMP/c.err" &
    pid=$!
    exec 3>"$TMP/in"
    head -c 20000 "$SHARED/text/war-and-peace-30k.txt" | tr '\n' ' ' >&3
    echo >&3
    sleep 1
    t0=$(date +%s)
    kill -INT $pid
    for _ in $(seq 1 100); do grep -q 'stopped' "$TMP/c.err" && break; sleep 0.1; done
    dt=$(($(date +%s) - t0))
    printf 'hi\n' >&3
    exec 3>&-
    wait $pid
    rc=$?
    if [ $rc -eq 0 ] && [ $dt -lt 10 ] && grep -q 'message was not sent' "$TMP/c.err" &&
       [ "$(grep -c '^\[prompt: [0-9]* new tokens' "$TMP/c.err")" -eq 1 ]; then
        ok "Ctrl-C during a long message: stopped after ${dt} s, the next one answered"
    else
        bad "Ctrl-C during a long message: exit $rc after ${dt} s"; cat "$TMP/c.err"
    fi
fi

exit $fail
