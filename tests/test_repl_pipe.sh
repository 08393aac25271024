#!/usr/bin/env bash
# The chat REPL with stdin from a pipe: one turn per line, only the new tokens of each turn are
# evaluated, slash commands (/save, /load, /clear, /set, /system), and `llamalite template`.
. "$(dirname "$0")/sh_common.sh"
MODEL=$SHARED/models/stories260K.gguf
need "$MODEL"
export XDG_STATE_HOME=$TMP/state HOME=$TMP # never touch the real history

# Two lines, two turns, exit 0 at the end of input.
printf 'hi\nbye\n' | "$BIN" -m "$MODEL" -i --temp 0 -n 8 -v >"$TMP/out" 2>"$TMP/err"
rc=$?
turns=$(grep -c '^\[prompt: [0-9]* new tokens' "$TMP/err")
if [ $rc -eq 0 ] && [ "$turns" -eq 2 ] && [ -s "$TMP/out" ]; then
    ok "two piped lines: two turns, exit 0"
else
    bad "two piped lines: exit $rc, $turns turns"; cat "$TMP/err"
fi

# The second turn costs only its own tokens: context after = before + new prompt + reply.
read -r c1 < <(sed -n 's/.*context \([0-9]*\)\/.*/\1/p' "$TMP/err" | head -1)
read -r k2 r2 c2 < <(sed -n 's/^\[prompt: \([0-9]*\) new tokens.*reply: \([0-9]*\) tokens.*context \([0-9]*\)\/.*/\1 \2 \3/p' "$TMP/err" | sed -n 2p)
if [ -n "${c1:-}" ] && [ -n "${c2:-}" ] && [ $((c1 + k2 + r2)) -eq "$c2" ] && [ "$k2" -lt 8 ]; then
    ok "second turn evaluated $k2 new prompt tokens (context $c1 -> $c2)"
else
    bad "incremental turn: c1=${c1:-?} k2=${k2:-?} r2=${r2:-?} c2=${c2:-?}"; cat "$TMP/err"
fi

# The first reply is what one-shot generation gives for the same prompt.
"$BIN" -m "$MODEL" -p "hi" --temp 0 -n 8 --log-disable >"$TMP/oneshot" 2>/dev/null
printf 'hi\n' | "$BIN" -m "$MODEL" -i --temp 0 -n 8 --log-disable >"$TMP/chat1" 2>/dev/null
if [ "$(cat "$TMP/oneshot")" = "$(cat "$TMP/chat1")" ] && [ -s "$TMP/oneshot" ]; then
    ok "first reply matches one-shot generation"
else
    bad "first reply '$(cat "$TMP/chat1")' vs one-shot '$(cat "$TMP/oneshot")'"
fi

# Continuation rules in a pipe: a trailing backslash joins lines, """ opens a block.
printf 'one\\\ntwo\n"""\nthree\n\nfour\n"""\n/save %s\n' "$TMP/c.json" |
    "$BIN" -m "$MODEL" -i --temp 0 -n 2 --log-disable >/dev/null 2>"$TMP/err"
if grep -q '"content": "one\\ntwo"' "$TMP/c.json" && grep -q '"content": "three\\n\\nfour"' "$TMP/c.json" &&
    [ "$(grep -c '"role": "user"' "$TMP/c.json")" -eq 2 ]; then
    ok "backslash and \"\"\" blocks make one message each"
else
    bad "multi-line messages"; cat "$TMP/c.json" "$TMP/err"
fi

# /save, /clear, /load round trip with a chat template and a system message.
printf 'Hello "you"\n/save %s\n/clear\n/stats\n/load %s\n/stats\n/system Be brief\n/system\n/set temp 0.5\n/set nope 1\n/bogus\n' \
    "$TMP/s.json" "$TMP/s.json" |
    "$BIN" -m "$MODEL" -i --temp 0 -n 3 -c 256 --chat-template chatml -sys 'You are "kind"' --log-disable \
        >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 0 ] && grep -q '"template": "chatml"' "$TMP/s.json" &&
    grep -q '"role": "system", "content": "You are \\"kind\\""' "$TMP/s.json" &&
    grep -q '"role": "user", "content": "Hello \\"you\\""' "$TMP/s.json" &&
    grep -q '"role": "assistant"' "$TMP/s.json" &&
    grep -q ', 1 message$' "$TMP/out" && grep -q '3 messages' "$TMP/out" &&
    grep -q '^Be brief$' "$TMP/out" && grep -q '^temp = 0.5$' "$TMP/out" &&
    grep -q "unknown setting 'nope'" "$TMP/out" && grep -q "unknown command '/bogus'" "$TMP/out"; then
    ok "/save /clear /load /system /set"
else
    bad "slash commands: exit $rc"; cat "$TMP/s.json" "$TMP/out" "$TMP/err"
fi

# /load of a broken file keeps the conversation and says why.
printf '[{"role": "user"}]' >"$TMP/bad.json"
printf '/load %s\n/load %s/none.json\n' "$TMP/bad.json" "$TMP" | "$BIN" -m "$MODEL" -i --log-disable >"$TMP/out" 2>&1
if grep -q 'message 0 needs' "$TMP/out" && grep -q 'cannot open' "$TMP/out"; then
    ok "/load errors"
else
    bad "/load errors"; cat "$TMP/out"
fi

# Context full: old turns are dropped and the chat goes on.
printf 'Once upon a time\nThe dog\nThe cat\n' |
    "$BIN" -m "$MODEL" -i --temp 0 -c 64 -v >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc -eq 0 ] && grep -q 'dropped' "$TMP/err" && [ "$(grep -c '^\[prompt:' "$TMP/err")" -eq 3 ]; then
    ok "full context: oldest turns dropped, three turns answered"
else
    bad "full context: exit $rc"; cat "$TMP/err"
fi

# Unknown template names are refused up front.
if "$BIN" -m "$MODEL" -i --chat-template nonsense </dev/null >/dev/null 2>"$TMP/err"; then
    bad "--chat-template nonsense accepted"
else
    grep -q "unknown chat template 'nonsense'" "$TMP/err" && ok "--chat-template nonsense refused" ||
        bad "message: $(cat "$TMP/err")"
fi

# llamalite template.
printf '[{"role":"system","content":"S"},{"role":"user","content":"Hi \\u00e9\\ud83d\\ude00"},{"role":"assistant","content":"A"},{"role":"user","content":"U"}]' >"$TMP/m.json"
"$BIN" template --chat-template llama3 --messages "$TMP/m.json" --add-generation-prompt >"$TMP/t" 2>"$TMP/err"
want=$(printf '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi \xc3\xa9\xf0\x9f\x98\x80<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nx')
if [ "$(cat "$TMP/t"; printf x)" = "$want" ]; then
    ok "llamalite template --chat-template llama3"
else
    bad "template output:"; cat "$TMP/t" "$TMP/err"
fi
if "$BIN" template -m "$MODEL" --messages "$TMP/m.json" >/dev/null 2>"$TMP/err"; then
    bad "a model without a chat template rendered"
else
    grep -q "has no chat template" "$TMP/err" && ok "model without a template: error" || bad "$(cat "$TMP/err")"
fi
printf '[{"role":"user","content":"x"' >"$TMP/broken.json"
if "$BIN" template --chat-template chatml --messages "$TMP/broken.json" >/dev/null 2>"$TMP/err"; then
    bad "broken JSON accepted"
else
    grep -q "line 1, column" "$TMP/err" && ok "broken JSON: $(cat "$TMP/err")" || bad "$(cat "$TMP/err")"
fi

exit $fail
