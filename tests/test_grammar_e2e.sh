#!/usr/bin/env bash
# End to end: generation constrained by grammars/json.gbnf and by a nested JSON Schema, with the
# random mixed-types model and stories260K, 20 seeds each: every output must parse as JSON
# (python3 -m json.tool) and validate against the schema; a cut-off run must exit 2.
set -u
BIN=${LLAMALITE_BIN:-build/llamalite}
SHARED=${LLAMALITE_SHARED:-../shared}
M=$SHARED/models
[ -f "$M/stories260K.gguf" ] && [ -f "$M/mixed-types.gguf" ] || { echo "no shared models: skip"; exit 77; }
command -v python3 >/dev/null || { echo "no python3: skip"; exit 77; }
[ -x "$BIN" ] || { echo "no llamalite binary at $BIN"; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0

cat > "$TMP/schema.json" <<'JSON'
{
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 24},
    "age": {"type": "integer", "minimum": 456, "maximum": 9999},
    "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 3},
    "address": {"$ref": "#/$defs/address"},
    "kind": {"enum": ["a", "b", null]},
    "when": {"type": "string", "format": "date-time"},
    "ok": {"type": "boolean"},
    "score": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1}
  },
  "required": ["name", "age", "address", "kind"],
  "$defs": {
    "address": {
      "type": "object",
      "properties": {
        "city": {"type": "string"},
        "zip": {"type": "string", "pattern": "^\\d{5}$"},
        "geo": {"type": "array", "prefixItems": [
          {"type": "number", "minimum": -90, "maximum": 90},
          {"type": "number", "minimum": -180, "maximum": 180}]}
      },
      "required": ["city", "zip"]
    }
  }
}
JSON

# validate.py SCHEMA OUT: JSON Schema validation (jsonschema if installed, else the checks
# this schema needs, written out by hand).
cat > "$TMP/validate.py" <<'PY'
import json, re, sys
schema = json.load(open(sys.argv[1]))
doc = json.load(open(sys.argv[2]))
try:
    import jsonschema
    jsonschema.validate(doc, schema)
    sys.exit(0)
except ImportError:
    pass
def fail(msg):
    print("invalid:", msg); sys.exit(1)
if not isinstance(doc, dict): fail("not an object")
for k in ("name", "age", "address", "kind"):
    if k not in doc: fail("missing " + k)
allowed = set(schema["properties"])
if set(doc) - allowed: fail("extra keys")
if not isinstance(doc["name"], str) or len(doc["name"]) > 24: fail("name")
if type(doc["age"]) is not int or not 456 <= doc["age"] <= 9999: fail("age")
for t in doc.get("tags", []):
    if not re.fullmatch("[a-z]+", t): fail("tag")
if len(doc.get("tags", [])) > 3: fail("tags")
a = doc["address"]
if not isinstance(a.get("city"), str) or not re.fullmatch(r"\d{5}", a.get("zip", "")): fail("address")
if "geo" in a and not (len(a["geo"]) == 2 and -90 <= a["geo"][0] <= 90 and -180 <= a["geo"][1] <= 180): fail("geo")
if doc["kind"] not in ("a", "b", None): fail("kind")
if "ok" in doc and type(doc["ok"]) is not bool: fail("ok")
s = doc.get("score")
if s is not None and not (0 < s <= 1): fail("score")
PY

run_case() { # model label flags...
    local model=$1 label=$2; shift 2
    for seed in $(seq 1 20); do
        out="$TMP/out.json"
        "$BIN" -m "$model" -p "Here is the JSON:" -n 400 -c 512 -s "$seed" --log-disable "$@" > "$out"
        rc=$?
        if [ $rc -ne 0 ]; then echo "FAIL $label seed $seed: exit $rc"; fail=1; continue; fi
        if ! python3 -m json.tool "$out" > /dev/null; then
            echo "FAIL $label seed $seed: not JSON:"; cat "$out"; echo; fail=1; continue
        fi
        case "$label" in
        *schema*) python3 "$TMP/validate.py" "$TMP/schema.json" "$out" > "$TMP/v.txt" 2>&1 ||
                  { echo "FAIL $label seed $seed: does not validate: $(tail -1 "$TMP/v.txt")"; cat "$out"; echo; fail=1; } ;;
        *) python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if isinstance(d, dict) else 1)' "$out" ||
                  { echo "FAIL $label seed $seed: not an object"; fail=1; } ;;
        esac
    done
    echo "done: $label"
}

for model in "$M/stories260K.gguf" "$M/mixed-types.gguf"; do
    name=$(basename "$model" .gguf)
    run_case "$model" "$name json.gbnf" --grammar-file grammars/json.gbnf
    run_case "$model" "$name schema" --json-schema-file "$TMP/schema.json"
done

# A pipe: the output goes straight into a JSON parser.
"$BIN" -m "$M/stories260K.gguf" -p "Once" -n 200 -s 7 --log-disable --json | python3 -m json.tool > /dev/null ||
    { echo "FAIL: --json | python3 -m json.tool"; fail=1; }

# Too few tokens to complete: what was generated is printed, stderr says so, exit 2.
"$BIN" -m "$M/stories260K.gguf" -p "Once" -n 3 -s 1 --log-disable -j "$(cat "$TMP/schema.json")" \
    > "$TMP/cut.txt" 2> "$TMP/cut.err"
rc=$?
[ $rc -eq 2 ] || { echo "FAIL: cut-off run exits $rc, want 2"; fail=1; }
grep -q "cut off" "$TMP/cut.err" || { echo "FAIL: no cut-off message"; cat "$TMP/cut.err"; fail=1; }
[ -s "$TMP/cut.txt" ] || { echo "FAIL: the cut-off run printed nothing"; fail=1; }

# A bad grammar is an error with its position.
"$BIN" -m "$M/stories260K.gguf" -p "Once" -n 3 --log-disable --grammar 'root ::= "a" (' 2> "$TMP/bad.err" > /dev/null
rc=$?
[ $rc -eq 1 ] && grep -q "1:14" "$TMP/bad.err" || { echo "FAIL: bad grammar: exit $rc: $(cat "$TMP/bad.err")"; fail=1; }

exit $fail
