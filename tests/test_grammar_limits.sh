#!/usr/bin/env bash
# Grammar limits and honesty through the command line (issue 20, defects 1 and 7):
# - a GBNF nested 70,000 deep is one "nested too deeply" error with its line:column and exit 1
#   in `grammar -g` and in generation with --grammar-file (it used to crash), 5,000 deep too
#   (it used to say "out of memory");
# - a chain of 100,000 rules is checked quickly (it took 23 s) and constrains generation;
# - JSON Schema keywords a grammar cannot enforce are named on stderr, the schema still works.
. "$(dirname "$0")/sh_common.sh"
TINY=$BUILD/tiny.gguf
need "$TINY"
command -v python3 >/dev/null || { echo "no python3"; exit 77; }

for depth in 5000 70000; do
    python3 -c "d=$depth; print('root ::= ' + '('*d + '\"a\"' + ')'*d)" > "$TMP/nest$depth.gbnf"
    for how in "grammar -g $TMP/nest$depth.gbnf" "-m $TINY -p x -n 2 --grammar-file $TMP/nest$depth.gbnf"; do
        # shellcheck disable=SC2086
        "$BIN" $how >/dev/null 2>"$TMP/err"
        rc=$?
        if [ $rc = 1 ] && grep -q ":1:1034: nested too deeply (more than 1024 levels of parentheses)" "$TMP/err" \
            && [ "$(grep -c . "$TMP/err")" = 1 ]; then
            ok "depth $depth, ${how%% *}: exit 1, $(cat "$TMP/err")"
        else
            bad "depth $depth, ${how%% *}: exit $rc, $(head -c 300 "$TMP/err")"
        fi
    done
done

python3 -c "
n = 100000
print('root ::= r0')
for i in range(n - 1): print(f'r{i} ::= r{i + 1}')
print(f'r{n - 1} ::= \"x\"')" > "$TMP/chain.gbnf"
start=$(date +%s%N)
out=$("$BIN" grammar -g "$TMP/chain.gbnf" 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ $rc = 0 ] && [ "$out" = ok ] && [ $ms -lt 5000 ]; then
    ok "a chain of 100,000 rules checked in $ms ms"
else
    bad "chain of 100,000 rules: exit $rc in $ms ms: $out"
fi
out=$("$BIN" -m "$TINY" -p x -n 5 --grammar-file "$TMP/chain.gbnf" 2>/dev/null)
[ "$out" = x ] && ok "the chain constrains generation: '$out'" || bad "generation with the chain: '$out'"

"$BIN" grammar -j '{"type":"array","items":{"type":"integer"},"uniqueItems":true,"not":{"const":[]}}' \
    >"$TMP/out" 2>"$TMP/err"
rc=$?
if [ $rc = 0 ] && grep -q "warning: JSON schema: root: 'uniqueItems' is not enforced" "$TMP/err" \
    && grep -q "'not' is not enforced" "$TMP/err" && [ "$(cat "$TMP/out")" = ok ]; then
    ok "unenforced schema keywords are named: $(tr '\n' '|' < "$TMP/err")"
else
    bad "schema warnings: exit $rc, $(cat "$TMP/err")"
fi
"$BIN" grammar -j '{"type":"object","minProperties":1,"description":"d"}' 2>"$TMP/err" >/dev/null
[ ! -s "$TMP/err" ] && ok "no warning when everything is enforced" || bad "unexpected: $(cat "$TMP/err")"
exit $fail
