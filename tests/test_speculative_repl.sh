#!/usr/bin/env bash
# Speculative decoding in the chat REPL (stdin from a pipe): with a draft model or prompt
# lookup, every greedy reply of a multi-turn session is byte-identical to the session without
# (plain continuation and a chat template, short replies, a context that fills up, a grammar);
# a statistics line per reply on stderr; sampling works; Ctrl-C (SIGINT) stops a reply and the
# next turn works.
. "$(dirname "$0")/sh_common.sh"
need "$M/mixed-types.gguf"
export XDG_STATE_HOME=$TMP/state HOME=$TMP # never touch the real history

# same NAME INPUT TURNS PLAIN-ARGS... -- SPECULATIVE-ARGS...: the piped session prints the same
# replies with and without the speculative flags, and one statistics line per reply.
same() {
    local name=$1 input=$2 turns=$3
    shift 3
    local -a plain=() spec=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do plain+=("$1"); shift; done
    shift
    spec=("$@")
    printf '%b' "$input" | "$BIN" -i "${plain[@]}" >"$TMP/a" 2>"$TMP/a.err" ||
        { bad "$name: plain session failed"; tail -2 "$TMP/a.err"; return; }
    printf '%b' "$input" | "$BIN" -i "${plain[@]}" "${spec[@]}" >"$TMP/b" 2>"$TMP/b.err" ||
        { bad "$name: speculative session failed"; tail -2 "$TMP/b.err"; return; }
    if ! cmp -s "$TMP/a" "$TMP/b" || ! [ -s "$TMP/a" ]; then
        bad "$name: replies differ from plain decoding"; diff "$TMP/a" "$TMP/b" | head -5; return
    fi
    local n
    n=$(grep -c '^\[speculative ([a-z ]*): drafted [0-9]*, accepted [0-9]* ([0-9.]*%), [0-9]* tokens, [0-9.]* tokens/s\]$' "$TMP/b.err")
    if [ "$n" -ne "$turns" ]; then
        bad "$name: $n statistics lines for $turns replies"; cat "$TMP/b.err"; return
    fi
    ok "$name: $(wc -c <"$TMP/a") identical bytes; $(grep -o 'accepted [0-9]* ([0-9.]*%)' "$TMP/b.err" | tr '\n' ' ')"
}

S="$M/stories260K.gguf"
D="$M/stories260K-f16.gguf"
same "stories260K, draft, 3 turns" 'Once upon a time\nThe dog ran\nLily said\n' 3 \
    -m "$S" --temp 0 -n 80 -- -md "$D"
same "stories260K, draft, chatml template, system message" 'Hello\nTell me a story\n' 2 \
    -m "$S" --temp 0 -n 60 -c 512 --chat-template chatml -sys 'Be kind' -- -md "$D" --draft-max 4
same "stories260K, lookup, repetitive turns" 'Lily had a ball. Lily had a ball. Lily had a\nLily had a ball\n' 2 \
    -m "$S" --temp 0 -n 80 -- --lookup-ngram 2
same "stories260K, draft, -n 5 replies" 'One\nTwo\nThree\n' 3 -m "$S" --temp 0 -n 5 -- -md "$D"
same "stories260K, draft, a full context (-c 64) drops turns" 'Once upon a time\nThe cat\nA big dog\n' 3 \
    -m "$S" --temp 0 -n 60 -c 64 -- -md "$D" --draft-max 8
same "stories260K, draft, --json replies" 'Give me JSON\nMore\n' 2 \
    -m "$S" --temp 0 -n 60 --json -- -md "$D" --draft-p-min 0
same "stories260K, draft, penalties and /set" 'Once upon a time\n/set repeat_penalty 1.3\nThe dog\n' 2 \
    -m "$S" --temp 0 -n 60 --repeat-last-n 16 -- -md "$D" --draft-p-min 0
same "mixed-types, draft mixed-base-q8_0, 2 turns" 'Hello there\nAnd then\n' 2 \
    -m "$M/mixed-types.gguf" --temp 0 -n 30 -t 2 -- -md "$M/mixed-base-q8_0.gguf"

# Sampling (the distribution is checked in test_speculative.c): /set temp works with a draft.
if printf 'Once upon a time\n/set temp 0.8\n/set seed 5\nThe dog\n' |
        "$BIN" -i -m "$S" --temp 0 -n 40 -md "$D" >"$TMP/s" 2>"$TMP/s.err" && [ -s "$TMP/s" ] &&
        [ "$(grep -c '^\[speculative' "$TMP/s.err")" -eq 2 ]; then
    ok "sampling after /set temp with a draft"
else
    bad "sampling with a draft"; tail -3 "$TMP/s.err"
fi

# Ctrl-C (SIGINT) stops a long reply; the next turn still works and the session ends with 0.
mkfifo "$TMP/in"
"$BIN" -i -m "$M/mixed-types.gguf" --temp 0 -n 4000 -c 8192 -t 1 -md "$M/mixed-base-q8_0.gguf" \
    <"$TMP/in" >"$TMP/c" 2>"$TMP/c.err" &
pid=$!
exec 3>"$TMP/in"
echo "hello" >&3
for _ in $(seq 1 300); do [ -s "$TMP/c" ] && break; sleep 0.1; done
kill -INT $pid
for _ in $(seq 1 300); do grep -q 'stopped' "$TMP/c.err" && break; sleep 0.1; done
printf '/set n_predict 3\nagain\n' >&3
exec 3>&-
wait $pid
rc=$?
if [ $rc -eq 0 ] && grep -q '(stopped)' "$TMP/c.err" && [ "$(grep -c '^\[speculative' "$TMP/c.err")" -eq 2 ] &&
        grep -q ', 3 tokens, ' "$TMP/c.err"; then
    ok "Ctrl-C stops a speculative reply; the next turn makes its 3 tokens"
else
    bad "Ctrl-C during a speculative reply: exit $rc"; cat "$TMP/c.err"
fi

# A layer-skip draft (stories260K's first 2 layers): turns synced into both caches, replies
# verified from layer 2.
if cut_layers "$S" 2 "$TMP/s2.gguf"; then
    same "stories260K, its first 2 layers as draft, 3 turns" 'Once upon a time\nThe dog ran\nLily said\n' 3 \
        -m "$S" --temp 0 -n 80 -- -md "$TMP/s2.gguf" --draft-p-min 0
    same "stories260K, first 2 layers, chatml, a full context (-c 96)" 'Hello\nTell me a story\nMore\n' 3 \
        -m "$S" --temp 0 -n 60 -c 96 --chat-template chatml -- -md "$TMP/s2.gguf" --draft-max 8
else
    echo "no python3: the layer-skip draft cases are skipped"
fi

# The flags are checked in interactive mode too.
if ! printf 'hi\n' | "$BIN" -i -m "$S" -md "$M/mixed-base-q8_0.gguf" >/dev/null 2>"$TMP/v.err" &&
        grep -q 'cannot draft' "$TMP/v.err"; then
    ok "vocabulary mismatch refused in the REPL"
else
    bad "vocabulary mismatch in the REPL"; cat "$TMP/v.err"
fi
exit $fail
