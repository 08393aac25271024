#!/usr/bin/env bash
# The chat REPL in a real terminal (tmux): editing keys, the cursor after wide and combining
# characters, wrapping, history (recall, search, persistence), Tab completion, multi-line
# input, bracketed paste, Ctrl-C stopping a long reply, -r handing the turn back, Ctrl-D
# leaving with the terminal restored. Waits poll the screen (with a generous limit), nothing is timed.
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
SHARED=${LLAMALITE_SHARED:-../shared}
MODEL=$SHARED/models/stories260K.gguf
SLOW=$SHARED/models/mixed-types.gguf
command -v tmux >/dev/null || { echo "tmux is not installed"; exit 77; }
[ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 77; }
[ -f "$MODEL" ] || { echo "no $MODEL"; exit 77; }
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
SLOW=$(cd "$(dirname "$SLOW")" && pwd)/$(basename "$SLOW")
TMP=$(mktemp -d)
T="tmux -L llamalite-test-$$ -f /dev/null"
trap '$T kill-server 2>/dev/null; rm -rf "$TMP"' EXIT
export XDG_STATE_HOME=$TMP/state
fail=0
ok() { echo "ok: $*"; }
bad() {
    echo "FAIL: $*"
    fail=1
    echo "--- screen:"
    $T capture-pane -p -t s 2>/dev/null
    echo "---"
}

screen() { $T capture-pane -p -t s; }
cursor() { $T display -p -t s '#{cursor_x},#{cursor_y}'; }
# The row the cursor is on.
cur_line() { screen | sed -n "$(($($T display -p -t s '#{cursor_y}') + 1))p"; }
# Waits until the screen matches an extended regex (up to ~20 s).
wait_for() {
    for _ in $(seq 1 200); do
        screen | grep -Eq -- "$1" && return 0
        sleep 0.1
    done
    return 1
}
wait_cursor_x() {
    for _ in $(seq 1 100); do
        [ "$($T display -p -t s '#{cursor_x}')" = "$1" ] && return 0
        sleep 0.05
    done
    return 1
}
# Number of prompt lines ("> ...") on the screen.
prompts() { screen | grep -Ec '^>( |$)'; }
wait_prompts() {
    for _ in $(seq 1 200); do
        [ "$(prompts)" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}
keys() { $T send-keys -t s "$@"; }
text() { $T send-keys -t s -l -- "$1"; }

n_sessions=0
start() { # args...: a REPL in an 80x24 terminal; after it ends, the terminal mode is saved
    $T kill-server 2>/dev/null
    n_sessions=$((n_sessions + 1)) # a fresh server each time: no race with the old one's exit
    T="tmux -L llamalite-test-$$-$n_sessions -f /dev/null"
    $T new-session -d -s s -x 80 -y 24 \
        "XDG_STATE_HOME='$XDG_STATE_HOME' TERM=xterm '$BIN' $*; echo EXIT=\$?; stty -a >'$TMP/stty'; sleep 600"
    wait_for '^>$' || bad "no prompt after start"
}

# ---- session 1: editing, wide characters, a turn, history, completion, paste --------------
start -m "'$MODEL'" --temp 0 -n 6 -c 256

text "hello world"
keys C-a
text "X"
wait_for '^> Xhello world$' && wait_cursor_x 3 && ok "Ctrl-A then typing" || bad "Ctrl-A"
keys C-e C-w
wait_for '^> Xhello$' && ok "Ctrl-E, Ctrl-W" || bad "Ctrl-W"
keys C-a C-k
wait_for '^>$' && ok "Ctrl-K" || bad "Ctrl-K"

text "a日本b"
keys Left Left
wait_for '^> a日本b' && wait_cursor_x 5 && ok "cursor before 本 is column 5" || bad "cursor after wide chars: $(cursor)"
keys BSpace
wait_for '^> a本b' && wait_cursor_x 3 && ok "Backspace deletes the wide 日 (column 3)" || bad "wide backspace: $(cursor)"
keys End Left
wait_cursor_x 5 && ok "End, Left over b: column 5" || bad "End/Left: $(cursor)"
keys C-u C-k
text "$(printf 'e\xcc\x81x')"
wait_cursor_x 4 && ok "e + combining acute is one column" || bad "combining: $(cursor)"
keys Left Left
wait_cursor_x 2 && ok "Left twice crosses é as one character" || bad "combining left: $(cursor)"
keys C-k
text "foo bar baz"
keys C-Left
wait_cursor_x 10 && keys C-Left && wait_cursor_x 6 && keys C-Right && wait_cursor_x 9 &&
    ok "Ctrl-Left/Right by word" || bad "word moves: $(cursor)"
keys C-a C-k

# A line longer than the terminal wraps; the cursor follows it across rows.
y0=$($T display -p -t s '#{cursor_y}')
text "$(printf '%0100d' 0)"
wait_cursor_x 22 && [ "$($T display -p -t s '#{cursor_y}')" -eq $((y0 + 1)) ] &&
    ok "100 characters wrap to the next row at column 22" || bad "wrap: $(cursor), start row $y0"
keys C-a
wait_cursor_x 2 && [ "$($T display -p -t s '#{cursor_y}')" -eq "$y0" ] && ok "Ctrl-A goes back to the first row" ||
    bad "wrap home: $(cursor)"
keys C-k

# A turn: the reply appears and a new prompt follows.
text "Once upon a time"
keys Enter
wait_prompts 2 && ok "a turn: reply and a new prompt" || bad "no reply"
keys Up
wait_for '^> Once upon a time$' && ok "Up recalls the last message" || bad "history Up"
keys C-u
text "/sh"
keys Tab
wait_for '^> /show$' && ok "Tab completes /show" || bad "completion"
keys Enter
wait_for 'template +none' && ok "/show" || bad "/show output"

# Ctrl-R finds an older message.
keys C-r
text "Once"
wait_for "reverse-i-search\)\`Once': Once upon a time" && ok "Ctrl-R search" || bad "Ctrl-R"
keys C-g
wait_for '^>$' && ok "Ctrl-G cancels the search" || bad "Ctrl-G"

# Multi-line: a trailing backslash continues; a bracketed paste keeps its newlines.
text 'first\'
keys Enter
text "second"
wait_for '^second$' && ok "backslash continues on a new row" || bad "backslash"
n=$(prompts)
keys Enter
wait_prompts $((n + 1)) || bad "multi-line message not sent"
$T set-buffer -b p "$(printf 'pasted one\npasted two')"
$T paste-buffer -p -b p -t s
wait_for '^pasted two$' && ok "bracketed paste keeps the newline, not sent yet" || bad "paste"
n=$(prompts)
keys Enter
wait_prompts $((n + 1)) || bad "paste not sent"
text "/save $TMP/s.json"
keys Enter
wait_for 'saved [0-9]+ messages' || bad "/save"
if grep -q '"content": "first\\nsecond"' "$TMP/s.json" && grep -q '"content": "pasted one\\npasted two"' "$TMP/s.json"; then
    ok "multi-line and pasted messages are single messages"
else
    bad "saved conversation:"; cat "$TMP/s.json"
fi

# Ctrl-C on an empty line warns, Ctrl-D leaves with the terminal restored.
keys C-c
wait_for 'Ctrl-C again' && ok "Ctrl-C on an empty line warns" || bad "Ctrl-C hint"
keys C-d
wait_for '^EXIT=0$' && ok "Ctrl-D exits 0" || bad "Ctrl-D"
for _ in $(seq 1 50); do [ -s "$TMP/stty" ] && break; sleep 0.1; done
if grep -Eq '(^| )icanon( |$)' "$TMP/stty" && grep -Eq '(^| )echo( |$)' "$TMP/stty"; then
    ok "terminal restored (icanon echo)"
else
    bad "terminal not restored:"; cat "$TMP/stty"
fi
if grep -q 'Once upon a time' "$XDG_STATE_HOME/llamalite/history" 2>/dev/null; then
    ok "history saved to \$XDG_STATE_HOME/llamalite/history"
else
    bad "history file"
fi

# ---- session 2: history persists, --no-history ignores it --------------------------------
start -m "'$MODEL'" --temp 0 -n 6 -c 256
keys Up
wait_for '^> /save ' && ok "history persists across sessions" || bad "persisted history"
keys C-u
# A resize redraws: 60 characters at 40 columns end on the second row, column 22.
text "$(printf '%060d' 0)"
wait_cursor_x 62 || bad "60 characters"
$T resize-window -t s -x 40
# (The terminal re-wraps the rows above too, so find the prompt row again.)
wait_cursor_x 22 && [ "$(screen | grep -c '^> 0')" -eq 1 ] &&
    [ "$($T display -p -t s '#{cursor_y}')" -eq "$(screen | grep -n '^> 0' | cut -d: -f1)" ] &&
    ok "resize to 40 columns redraws the line" || bad "resize: $(cursor)"
keys C-l
for _ in $(seq 1 50); do [ "$($T display -p -t s '#{cursor_y}')" = 1 ] && break; sleep 0.05; done
[ "$(screen | head -1 | cut -c1-4)" = "> 00" ] && [ "$(cursor)" = "22,1" ] && ok "Ctrl-L clears and redraws at the top" ||
    bad "Ctrl-L: $(cursor)"
keys C-u C-d
wait_for '^EXIT=0$' || bad "exit 2"
start -m "'$MODEL'" --temp 0 -n 6 -c 256 --no-history
keys Up
sleep 0.3
wait_for '^>$' && ! screen | grep -q '^> /save' && ok "--no-history" || bad "--no-history recalled"
keys C-d
wait_for '^EXIT=0$' || bad "exit 3"

# ---- session 3: Ctrl-C stops a long reply; the next turn works ---------------------------
if [ -f "$SLOW" ]; then
    start -m "'$SLOW'" --temp 0 -c 8192 -t 1
    text "hello"
    keys Enter
    # Wait until the reply has started (the cursor left the prompt row).
    for _ in $(seq 1 200); do
        [ "$(screen | grep -c .)" -ge 3 ] && break
        sleep 0.1
    done
    # (On a loaded machine the key may still land while the message is evaluated: "(stopped; the
    # message was not sent)" is as right then.)
    keys C-c
    wait_for '\(stopped(\)|; the message was not sent)' && wait_prompts 2 &&
        ok "Ctrl-C stops the reply and returns to the prompt" || bad "Ctrl-C during generation"
    text "/set n_predict 3"
    keys Enter
    wait_for 'n_predict = 3' || bad "/set n_predict"
    n=$(prompts)
    text "again"
    keys Enter
    wait_prompts $((n + 1)) && ok "the next turn after an interrupted one" || bad "turn after Ctrl-C"
    text "/stats"
    keys Enter
    wait_for 'last reply +3 tokens' && ok "/stats shows the 3-token reply" || bad "/stats"
    keys C-d
    wait_for '^EXIT=0$' && ok "exit after Ctrl-C" || bad "exit 4"
else
    echo "skip: no $SLOW for the Ctrl-C test"
fi

# ---- session 4: -r hands the turn back right after the reverse prompt (llama-cli's -i -r) ---
start -m "'$MODEL'" --temp 0 -n 60 -c 256 -r went
text "Once upon a time"
keys Enter
wait_prompts 2 && screen | grep -Eq 'went$' && ! screen | grep -Eq 'went.+' &&
    ok "-r: the reply ends at 'went', the prompt is back" || bad "-r in a terminal"
keys C-d
wait_for '^EXIT=0$' || bad "exit after -r"

# ---- SIGTERM while editing restores the terminal ------------------------------------------
rm -f "$TMP/stty"
start -m "'$MODEL'" --temp 0 -n 6 -c 256
text "abc"
pid=$(pgrep -P "$($T display -p -t s '#{pane_pid}')" || true)
if [ -n "$pid" ]; then
    kill -TERM "$pid"
    for _ in $(seq 1 50); do [ -s "$TMP/stty" ] && break; sleep 0.1; done
    grep -Eq '(^| )icanon( |$)' "$TMP/stty" && ok "SIGTERM restores the terminal" || bad "SIGTERM: $(cat "$TMP/stty")"
else
    bad "no process to signal"
fi

exit $fail
