#!/usr/bin/env bash
# Fuzz campaigns: each harness of tests/fuzz for RUNS executions (default 10^7) under
# ASan/UBSan with libFuzzer, the checked-in corpus as the seed. Needs clang.
#   scripts/fuzz.sh [RUNS] [HARNESS...]      harnesses: gguf gbnf json_schema jinja tok (every
#                                            shared vocabulary, picked by the first byte) tok:VOCAB
# Findings (crashes, leaks, out of memory, inputs slower than 60 s: a hang) land in
# build-fuzz/findings/ (slow units, reported from 30 s, too, but they are not findings); the line
# "HARNESS: N executions, K findings" per campaign goes to stdout and build-fuzz/campaigns.log.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-10000000}; shift || true
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(gguf json_schema tok jinja gbnf)
export LLAMALITE_SHARED=${LLAMALITE_SHARED:-$(cd .. && pwd)/shared}

# Without libFuzzer's comparison tracing in the engine (trace-cmp): it cost 80% of the time in
# the grammar matcher's loops, and the campaigns run 5x the executions without it; the
# dictionaries give the fuzzer the keywords that tracing would find.
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="-fno-sanitize-coverage=trace-cmp" >/dev/null || exit 1
cmake --build build-fuzz -j2 --target fuzz_gguf fuzz_gguf_replay fuzz_gbnf fuzz_json_schema fuzz_tokenizer fuzz_jinja >/dev/null || exit 1
mkdir -p build-fuzz/findings build-fuzz/corpus

for h in "${HARNESSES[@]}"; do
  bin=fuzz_${h%%:*}; vocab=""; extra=()
  case $h in
    tok) bin=fuzz_tokenizer ;;
    tok:*) bin=fuzz_tokenizer; vocab=${h#tok:} ;;
    gguf) extra=(-max_len=4096 -dict=tests/fuzz/gguf.dict) ;;
    gbnf) extra=(-dict=tests/fuzz/gbnf.dict -max_len=1024) ;;
    jinja|json_schema) extra=(-dict=tests/fuzz/$h.dict -max_len=4096) ;;
  esac
  seed=tests/fuzz/corpus/$bin; [ -d "$seed" ] || seed=""
  work=build-fuzz/corpus/${h/:/-}; mkdir -p "$work"
  log=build-fuzz/${h/:/-}.log
  [ "$bin" = fuzz_gguf ] && [ -z "$(ls "$work")" ] && build-fuzz/tests/fuzz/fuzz_gguf_replay --write-corpus "$work" >/dev/null 2>&1
  LLAMALITE_FUZZ_VOCAB=$vocab build-fuzz/tests/fuzz/$bin -runs="$RUNS" -timeout=60 -report_slow_units=30 -rss_limit_mb=3072 \
    -print_final_stats=1 -artifact_prefix="build-fuzz/findings/${h/:/-}-" "${extra[@]}" "$work" $seed >"$log" 2>&1
  rc=$?
  n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  k=$(ls build-fuzz/findings | grep -cE "^${h/:/-}-(crash|leak|timeout|oom)-")
  echo "$h: ${n:-0} executions, $k findings (exit $rc, $(date -u +%FT%TZ), $(git rev-parse --short HEAD))" | tee -a build-fuzz/campaigns.log
done
