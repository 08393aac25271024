#!/usr/bin/env bash
# The subcommands on every family of ../shared/models/arch (LoRA, export-lora and speculative
# decoding per family are in test_arch_tools.c, the context shift's numbers in test_shift.c):
#   - info -m prints the family's hyperparameters, each with its own telltale line;
#   - quantize (a mixture, then IQ4_XS with an importance matrix from imatrix) gives a file
#     that loads and generates;
#   - perplexity prints a finite estimate; trace prints one JSON step per token; bench prints
#     its pp and tg rows;
#   - one-shot generation past a small context shifts it and goes on; the piped REPL answers
#     every turn, and shifts too when its context fills.
. "$(dirname "$0")/sh_common.sh"
A=$SHARED/models/arch
TEXT=$SHARED/text/war-and-peace-30k.txt
need "$A/qwen2.gguf" "$A/gemma3.gguf" "$A/llama31.gguf" "$TEXT"
head -c 4000 "$TEXT" > "$TMP/text.txt"

# family;arch;telltale lines of info's hyperparameters (; separated)
FAMILIES="
qwen2;qwen2;attn_q.bias attn_k.bias attn_v.bias;rope_scaling    = none
qwen2-yarn;qwen2;rope_scaling    = yarn, factor 4, original context 128;output          = tied (token_embd)
qwen3;qwen3;head_dim        = 32;attn_q_norm attn_k_norm
phi3;phi3;SwiGLU, gate|up fused;layer tensors   = attn_norm attn_qkv attn_output ffn_norm ffn_up ffn_down;sliding_window  = 2047, every layer
gemma2;gemma2;attn_softcap    = 4;final_softcap   = 30;sliding_window  = 16, even layers;embd_scale      = 8;GeGLU
gemma3;gemma3;all but every 6th layer;rope_base_local = 10000;rope_scaling    = linear, factor 8;attn_q_norm attn_k_norm
llama31;llama;rope_freqs      = 16 factors;rope_freq_base  = 500000
"

while IFS= read -r row; do
    [ -n "$row" ] || continue
    IFS=';' read -r -a f <<<"$row"
    name=${f[0]} arch=${f[1]}
    m=$A/$name.gguf
    [ -f "$m" ] || { bad "$name: no $m"; continue; }

    # info
    hp=$("$BIN" info -m "$m" 2>&1 | sed -n '/^hyperparameters:/,$p')
    if ! grep -qF "architecture    = $arch " <<<"$hp"; then bad "$name: info names no architecture '$arch'"; fi
    missing=""
    for t in "${f[@]:2}"; do grep -qF -- "$t" <<<"$hp" || missing="$missing [$t]"; done
    if [ -z "$missing" ]; then ok "$name: info prints its hyperparameters"; else bad "$name: info lacks$missing"; fi

    # quantize: a mixture, then imatrix + IQ4_XS; both load and generate
    if "$BIN" quantize --allow-requantize "$m" "$TMP/$name-q4km.gguf" Q4_K_M >"$TMP/q.log" 2>&1 &&
        out=$("$BIN" -m "$TMP/$name-q4km.gguf" -p "Once upon a time" -n 8 --temp 0 -t 1 2>/dev/null) && [ -n "$out" ]; then
        ok "$name: quantize Q4_K_M, then generate"
    else
        bad "$name: quantize Q4_K_M: $(tail -1 "$TMP/q.log")"
    fi
    if "$BIN" imatrix -m "$m" -f "$TMP/text.txt" -o "$TMP/$name-im.gguf" -c 64 -t 1 >"$TMP/im.log" 2>&1 &&
        "$BIN" quantize --allow-requantize --imatrix "$TMP/$name-im.gguf" "$m" "$TMP/$name-iq4.gguf" IQ4_XS >"$TMP/q.log" 2>&1 &&
        out=$("$BIN" -m "$TMP/$name-iq4.gguf" -p "Once upon a time" -n 8 --temp 0 -t 1 2>/dev/null) && [ -n "$out" ]; then
        ok "$name: imatrix ($(grep -o '[0-9]* entries' "$TMP/im.log")), quantize IQ4_XS with it, then generate"
    else
        bad "$name: imatrix + IQ4_XS: $(tail -1 "$TMP/im.log") / $(tail -1 "$TMP/q.log")"
    fi

    # perplexity, trace, bench
    ppl=$("$BIN" perplexity -m "$m" -f "$TMP/text.txt" -c 64 -t 1 2>/dev/null |
        sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- .*/\1/p')
    if [ -n "$ppl" ]; then ok "$name: perplexity $ppl"; else bad "$name: perplexity printed no finite estimate"; fi
    steps=$("$BIN" trace -m "$m" -p "Hello" -n 3 -t 1 2>/dev/null | grep -o '"token":' | wc -l)
    if [ "$steps" -eq 3 ]; then ok "$name: trace, 3 steps"; else bad "$name: trace gave $steps steps for -n 3"; fi
    rows=$("$BIN" bench -m "$m" -p 8 -n 4 -r 1 -t 1 2>/dev/null | grep -cE '\| +(pp8|tg4) +\|')
    if [ "$rows" -eq 2 ]; then ok "$name: bench pp8 and tg4"; else bad "$name: bench printed $rows of its 2 rows"; fi

    # one-shot past a context of 32: shifts, and generates all 60 tokens
    "$BIN" -m "$m" -p "Once upon a time" -c 32 -n 60 --temp 0 -t 1 -v --ignore-eos >"$TMP/o.txt" 2>"$TMP/o.err"
    rc=$?
    shifts=$(grep -c 'context shift' "$TMP/o.err")
    gen=$(sed -n 's/.*generation \([0-9]*\) tokens.*/\1/p' "$TMP/o.err" | tail -1)
    if [ $rc -eq 0 ] && [ "$shifts" -ge 1 ] && [ "${gen:-0}" -eq 60 ]; then
        ok "$name: one-shot past -c 32: $shifts shift(s), 60 tokens"
    else
        bad "$name: one-shot past -c 32: exit $rc, $shifts shift(s), ${gen:-no} tokens generated"
    fi

    # piped REPL: three turns, each answered; a small context fills and shifts
    printf 'Hello there\nTell me more\nAnd then?\n' |
        "$BIN" -m "$m" -i -c 48 -n 12 --temp 0 -t 1 --ignore-eos >"$TMP/r.txt" 2>"$TMP/r.err"
    rc=$?
    if [ $rc -eq 0 ] && [ -s "$TMP/r.txt" ] && ! grep -qi 'error' "$TMP/r.err"; then
        ok "$name: piped REPL, 3 turns in -c 48"
    else
        bad "$name: piped REPL: exit $rc: $(tail -2 "$TMP/r.err")"
    fi
done <<<"$FAMILIES"
exit $fail
