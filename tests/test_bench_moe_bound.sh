#!/usr/bin/env bash
# llamalite bench --moe-bound (generation's memory bound on a mixture of experts):
#   - on a MoE model, after its tg row, the bytes read per token and the two bounds, and tg as a
#     share of them, for each thread count; the bytes per token the file's tensor sizes give
#     (test_moe_traffic checks the number itself);
#   - with -o json the table stays valid JSON and the lines go to stderr;
#   - a dense model: one line naming the file, exit 1; fewer than 2 generated tokens: the same.
. "$(dirname "$0")/sh_common.sh"
A=$SHARED/models/arch
need "$A/qwen3moe.gguf" "$A/qwen3.gguf"

if "$BIN" bench -m "$A/qwen3moe.gguf" -p 0 -n 6 -r 1 -t 1,2 --moe-bound >"$TMP/out" 2>"$TMP/err"; then
    for t in 1 2; do
        if grep -q "^moe-bound tg6, $t threads: [0-9.]* MB read per token (experts [0-9.]* MB, [0-9.]*% of them" "$TMP/out" &&
            [ "$(grep -c "replay bound (those reads, nothing computed): [0-9.]* ms/token = [0-9.]* t/s" "$TMP/out")" -eq 2 ] &&
            grep -q "tg6 [0-9.]* t/s = [0-9]*% of the replay bound, [0-9]*% of the streaming bound" "$TMP/out"; then
            ok "--moe-bound, $t threads"
        else
            bad "--moe-bound, $t threads:"; cat "$TMP/out"
        fi
    done
else
    bad "--moe-bound failed:"; cat "$TMP/err"
fi

if "$BIN" bench -m "$A/qwen3moe.gguf" -p 0 -n 4 -r 1 -t 1 -o json --moe-bound >"$TMP/json" 2>"$TMP/err" &&
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/json" && grep -q "^moe-bound tg4" "$TMP/err"; then
    ok "--moe-bound with -o json: valid JSON, the lines on stderr"
else
    bad "--moe-bound with -o json"; cat "$TMP/json" "$TMP/err"
fi

# bad input: one line naming the model, exit 1
for case in "qwen3.gguf 4 not a mixture-of-experts model" "qwen3moe.gguf 1 at least 2 generated tokens"; do
    read -r file n want <<<"$case"
    "$BIN" bench -m "$A/$file" -p 0 -n "$n" -r 1 -t 1 --moe-bound >/dev/null 2>"$TMP/err"
    rc=$?
    if [ $rc -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -qF "$A/$file: " "$TMP/err" && grep -qF "$want" "$TMP/err"; then
        ok "--moe-bound on $file -n $n: $(cat "$TMP/err")"
    else
        bad "--moe-bound on $file -n $n: exit $rc, '$(cat "$TMP/err")'"
    fi
done
exit $fail
