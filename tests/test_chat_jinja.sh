#!/usr/bin/env bash
# Jinja chat templates through the CLI: `template` prints exactly what the template writes (and
# fails with the template's line:column where it fails), -sys and the REPL render through a
# --chat-template-file, a template that raises falls back to the built-in family it resembles,
# --reasoning off hides the thinking, /no_think sets enable_thinking, and a second REPL turn
# evaluates only its new tokens. (cases.json through `template -m`: test_jinja_golden.)
. "$(dirname "$0")/sh_common.sh"
MODEL=$SHARED/models/stories260K.gguf
need "$MODEL"
export XDG_STATE_HOME=$TMP/state HOME=$TMP

# A ChatML template with tools and a generation prompt that opens a think block.
cat >"$TMP/think.jinja" <<'T'
{%- if tools %}{{ '<|im_start|>system\nTools: ' + tools | map(attribute='function.name') | join(', ') + '<|im_end|>\n' }}{% endif -%}
{%- for m in messages -%}
{{ '<|im_start|>' + m.role + '\n' }}{% if m.role == 'assistant' %}{{ m.content.split('</think>')[-1].lstrip('\n') }}{% else %}{{ m.content }}{% endif %}{{ '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n<think>\n' }}{% endif -%}
T
cat >"$TMP/msgs.json" <<'J'
{"messages": [{"role": "user", "content": "Héllo"}, {"role": "assistant", "content": "<think>\nhm\n</think>\n\nHi"},
              {"role": "user", "content": "and?"}],
 "tools": [{"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "function": {"name": "now"}}]}
J
printf '<|im_start|>system\nTools: get_weather, now<|im_end|>\n<|im_start|>user\nHéllo<|im_end|>\n<|im_start|>assistant\nHi<|im_end|>\n<|im_start|>user\nand?<|im_end|>\n<|im_start|>assistant\n<think>\n' >"$TMP/want"
"$BIN" template --chat-template-file "$TMP/think.jinja" --messages "$TMP/msgs.json" --add-generation-prompt >"$TMP/got" 2>"$TMP/err"
if [ $? -eq 0 ] && cmp -s "$TMP/got" "$TMP/want"; then ok "template --chat-template-file: exact text"
else bad "template --chat-template-file"; cat "$TMP/err"; diff "$TMP/got" "$TMP/want"; fi

# Errors: one line naming the file and line:column, exit 1.
printf 'ok\n{%% for m in messages %%}\n  {{ m.content | nosuchfilter }}\n{%% endfor %%}\n' >"$TMP/bad.jinja"
"$BIN" template --chat-template-file "$TMP/bad.jinja" --messages "$TMP/msgs.json" >"$TMP/got" 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -q "bad.jinja: chat template line 3, column" "$TMP/err" && grep -q nosuchfilter "$TMP/err"; then
    ok "a failing template: $(cat "$TMP/err")"
else bad "failing template: rc $rc"; cat "$TMP/err"; fi
printf '{%% if messages %%}never closed' >"$TMP/open.jinja"
"$BIN" template --chat-template-file "$TMP/open.jinja" --messages "$TMP/msgs.json" >/dev/null 2>"$TMP/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "line 1, column .*endif" "$TMP/err"; then ok "an unclosed block: $(cat "$TMP/err")"
else bad "unclosed block: rc $rc"; cat "$TMP/err"; fi
"$BIN" template -m "$MODEL" --messages "$TMP/msgs.json" >/dev/null 2>"$TMP/err"
if [ $? -eq 1 ] && grep -q "has no chat template" "$TMP/err"; then ok "a model without a template: one line"
else bad "model without a template"; cat "$TMP/err"; fi
# The built-in families stay available by name.
"$BIN" template --chat-template chatml --messages "$TMP/msgs.json" --add-generation-prompt >"$TMP/got" 2>"$TMP/err"
if [ $? -eq 0 ] && grep -q '<|im_start|>assistant' "$TMP/got"; then ok "--chat-template chatml"
else bad "--chat-template chatml"; cat "$TMP/err"; fi

# llama-cli's --chat-template also takes Jinja text.
"$BIN" template --chat-template "{% for m in messages %}[{{ m.role }}]{{ m.content|upper }}{% endfor %}" --messages "$TMP/msgs.json" >"$TMP/got" 2>"$TMP/err"
if [ $? -eq 0 ] && [ "$(cat "$TMP/got")" = "[user]HÉLLO[assistant]<THINK>
HM
</THINK>

HI[user]AND?" ]; then ok "--chat-template JINJA_TEXT"
else bad "--chat-template JINJA_TEXT"; cat "$TMP/got" "$TMP/err"; fi

# One-shot -sys through the file's template; --reasoning off hides what follows the open
# <think> (the tiny model never closes it: nothing is left).
"$BIN" -m "$MODEL" --chat-template-file "$TMP/think.jinja" -sys "Be brief." -p "hi" -n 12 --temp 0 >"$TMP/shown" 2>"$TMP/err"
rc1=$?
"$BIN" -m "$MODEL" --chat-template-file "$TMP/think.jinja" -sys "Be brief." -p "hi" -n 12 --temp 0 --reasoning off >"$TMP/hidden" 2>>"$TMP/err"
rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ -s "$TMP/shown" ] && [ ! -s "$TMP/hidden" ]; then ok "--reasoning off hides the thinking in one-shot"
else bad "--reasoning off: rc $rc1/$rc2, $(wc -c <"$TMP/shown") / $(wc -c <"$TMP/hidden") bytes"; cat "$TMP/err"; fi
"$BIN" -m "$MODEL" --reasoning maybe -p hi -n 1 >/dev/null 2>"$TMP/err"
if [ $? -eq 1 ] && grep -q "on or off" "$TMP/err"; then ok "--reasoning takes on|off"; else bad "--reasoning maybe"; fi

# A template that raises for a system message falls back to the family it resembles.
cat >"$TMP/nosys.jinja" <<'T'
{%- for m in messages -%}
{%- if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif -%}
{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}
{%- endfor -%}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif -%}
T
"$BIN" -m "$MODEL" --chat-template-file "$TMP/nosys.jinja" -sys "Be brief." -p "hi" -n 4 --temp 0 >"$TMP/out" 2>"$TMP/err"
if [ $? -eq 0 ] && grep -q "warning: .*nosys.jinja: line 2, column .*System role not supported.*built-in 'chatml'" "$TMP/err"; then
    ok "a raising template falls back with a warning"
else bad "fallback"; cat "$TMP/err"; fi

# REPL: each turn evaluates only what is new (context after = before + new prompt + reply).
printf 'hi\nhow are you\n' | "$BIN" -m "$MODEL" --chat-template-file "$TMP/think.jinja" -i -c 512 --temp 0 -n 8 -v >"$TMP/out" 2>"$TMP/err"
rc=$?
read -r c1 < <(sed -n 's/.*context \([0-9]*\)\/.*/\1/p' "$TMP/err" | head -1)
read -r k2 r2 c2 < <(sed -n 's/^\[prompt: \([0-9]*\) new tokens.*reply: \([0-9]*\) tokens.*context \([0-9]*\)\/.*/\1 \2 \3/p' "$TMP/err" | sed -n 2p)
if [ $rc -eq 0 ] && [ -n "${c1:-}" ] && [ -n "${c2:-}" ] && [ $((c1 + k2 + r2)) -eq "$c2" ]; then
    ok "second turn evaluated $k2 new prompt tokens (context $c1 -> $c2)"
else bad "incremental turn: rc $rc c1=${c1:-?} k2=${k2:-?} r2=${r2:-?} c2=${c2:-?}"; cat "$TMP/err"; fi

# /no_think and /think set enable_thinking for templates that read it.
cat >"$TMP/qwen3ish.jinja" <<'T'
{%- for m in messages %}{{ '<|im_start|>' + m.role + '\n' + m.content + '<|im_end|>\n' }}{% endfor -%}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}{% endif %}{% endif -%}
T
printf '/no_think\nhi\n/think\n' | "$BIN" -m "$MODEL" --chat-template-file "$TMP/qwen3ish.jinja" -i -c 512 --temp 0 -n 4 >"$TMP/out" 2>"$TMP/err"
if [ $? -eq 0 ] && grep -q "(thinking off" "$TMP/out" && grep -q "(thinking on" "$TMP/out"; then ok "/no_think and /think"
else bad "/no_think"; cat "$TMP/out" "$TMP/err"; fi
printf '/no_think\n' | "$BIN" -m "$MODEL" --chat-template-file "$TMP/think.jinja" -i -c 512 --temp 0 -n 4 >"$TMP/out" 2>"$TMP/err"
if grep -q "no thinking switch" "$TMP/out"; then ok "/no_think without enable_thinking says so"
else bad "/no_think without enable_thinking"; cat "$TMP/out"; fi

# On a terminal the thinking is dimmed, the answer is not (the tiny model stays in the think
# block that think.jinja opens; qwen3ish.jinja opens none).
if command -v tmux >/dev/null; then
    T="tmux -L llamalite-jinja-$$ -f /dev/null"
    reply_row() { # TEMPLATE: the screen row after "> hi", with its SGR codes
        $T new-session -d -s s -x 100 -y 30 "'$BIN' -m '$MODEL' --chat-template-file '$1' -n 6 --temp 0 -c 512 --no-history; sleep 30"
        for _ in $(seq 1 100); do
            $T capture-pane -p -t s | grep -q '^> *$' && break
            sleep 0.1
        done
        $T send-keys -t s hi Enter
        for _ in $(seq 1 100); do
            [ "$($T capture-pane -p -t s | grep -c '^>')" -ge 2 ] && break
            sleep 0.1
        done
        $T capture-pane -e -p -t s | grep -A1 'hi$' | sed -n 2p
        $T kill-server 2>/dev/null
    }
    dim=$(printf '\033[2m')
    think_row=$(reply_row "$TMP/think.jinja")
    plain_row=$(reply_row "$TMP/qwen3ish.jinja")
    case "$think_row" in *"$dim"*) t_dim=1 ;; *) t_dim=0 ;; esac
    case "$plain_row" in *"$dim"*) p_dim=1 ;; *) p_dim=0 ;; esac
    if [ $t_dim -eq 1 ] && [ $p_dim -eq 0 ]; then ok "on a terminal the thinking is dimmed, the answer is not"
    else bad "dimmed thinking: '$(printf %s "$think_row" | cat -v)' / '$(printf %s "$plain_row" | cat -v)'"; fi
fi
# gpt-oss's harmony format (its real template, from the Jinja2 goldens): the reply's channels are
# split, the analysis is thinking (hidden with --reasoning off), the final channel the answer, the
# markup never shows; the next turn renders the reply as the template wants it (content without
# channel tags, the analysis as "thinking": the template raises otherwise). A grammar makes the
# small model write a harmony reply.
if python3 -c 'import json,sys; c=[c for c in json.load(open(sys.argv[1])) if c["template_name"]=="openai-gpt-oss-120b"]; open(sys.argv[2],"w").write(c[0]["template"])' \
        "$SHARED/golden/chat-templates/cases.json" "$TMP/gpt-oss.jinja" 2>/dev/null; then
    G='root ::= "<|channel|>analysis<|message|>User greets.<|end|><|start|>assistant<|channel|>final<|message|>Hello there"'
    printf 'hi\nagain\n' | "$BIN" -m "$MODEL" -c 1024 -i --chat-template-file "$TMP/gpt-oss.jinja" --grammar "$G" \
        --reasoning off -n 120 --temp 0 >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 0 ] && [ "$(cat "$TMP/out")" = "$(printf 'Hello there\nHello there')" ] && ! grep -qi "template\|raise" "$TMP/err"; then
        ok "gpt-oss channels: the answer alone, two turns through its own template"
    else bad "gpt-oss channels: rc $rc"; cat -A "$TMP/out" | head -5; head -5 "$TMP/err"; fi
    printf 'hi\n' | "$BIN" -m "$MODEL" -c 1024 -i --chat-template-file "$TMP/gpt-oss.jinja" --grammar "$G" -n 120 --temp 0 \
        >"$TMP/out" 2>/dev/null
    if [ "$(cat "$TMP/out")" = "$(printf 'User greets.\nHello there')" ]; then ok "gpt-oss channels: the analysis on a line of its own"
    else bad "gpt-oss analysis shown: '$(cat -A "$TMP/out" | head -3)'"; fi
    "$BIN" -m "$MODEL" -c 1024 --chat-template-file "$TMP/gpt-oss.jinja" -p hi --grammar "$G" -n 120 --temp 0 \
        --reasoning off >"$TMP/out" 2>/dev/null
    if [ "$(cat "$TMP/out")" = "Hello there" ]; then ok "gpt-oss channels in one-shot: the answer"
    else bad "gpt-oss one-shot: '$(cat -A "$TMP/out" | head -3)'"; fi
else
    echo "skip: no gpt-oss template in the chat-template goldens"
fi
exit $fail
