#!/usr/bin/env bash
# Speed side by side: `llamalite bench` and the given llama-bench binaries (llama.cpp's, and
# optionally ik_llama.cpp's, which also runs with -rtr 1) on the same model files, in alternating
# runs (every engine once per round, the order rotating), then the median tokens/s of each and
# the ratios llamalite / reference.
#
# usage: scripts/bench-compare.sh [options] REF_LLAMA_BENCH [IK_LLAMA_BENCH]
#   -m FILE      a model to measure (repeatable; default: $BENCH_MODELS, space-separated)
#   -t LIST      thread counts (default 1,2)
#   -p N         prompt length (default 128; 0 = none)
#   -n N         generated tokens (default 32; 0 = none)
#   -R N         rounds (default 3)
#   -b BIN       the llamalite binary (default: $LLAMALITE_BIN, else build/llamalite)
# Environment for llamalite (e.g. LLAMALITE_ISA=avx2) passes through.
set -euo pipefail
cd "$(dirname "$0")/.."

models=()
threads=1,2
n_prompt=128
n_gen=32
rounds=3
bin=${LLAMALITE_BIN:-build/llamalite}
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 1; }
while getopts "m:t:p:n:R:b:h" opt; do
    case $opt in
    m) models+=("$OPTARG") ;;
    t) threads=$OPTARG ;;
    p) n_prompt=$OPTARG ;;
    n) n_gen=$OPTARG ;;
    R) rounds=$OPTARG ;;
    b) bin=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] && [ $# -le 2 ] || usage
ref=$1
ik=${2:-}
[ ${#models[@]} -gt 0 ] || read -r -a models <<<"${BENCH_MODELS:-}"
[ ${#models[@]} -gt 0 ] || { echo "bench-compare: no model (-m FILE or \$BENCH_MODELS)" >&2; exit 1; }
for f in "$bin" "$ref" ${ik:+"$ik"}; do
    [ -x "$f" ] || { echo "bench-compare: $f: not an executable" >&2; exit 1; }
done
for m in "${models[@]}"; do
    [ -r "$m" ] || { echo "bench-compare: $m: cannot read" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "bench-compare: needs python3" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
engines=(llamalite llama.cpp)
[ -n "$ik" ] && engines+=(ik "ik-rtr")

# One run of one engine: its JSON goes to $out/<engine>.<round>.<model index>.json.
run() {
    local engine=$1 model=$2 dest=$3
    local args=(-m "$model" -p "$n_prompt" -n "$n_gen" -t "$threads" -r 1 -o json)
    case $engine in
    llamalite) "$bin" bench "${args[@]}" ;;
    llama.cpp) "$ref" "${args[@]}" ;;
    ik) "$ik" "${args[@]}" ;;
    ik-rtr) "$ik" "${args[@]}" -rtr 1 ;;
    esac >"$dest" 2>"$dest.err" || { echo "bench-compare: $engine on $model failed:" >&2; tail -3 "$dest.err" >&2; }
}

for ((r = 0; r < rounds; r++)); do
    for i in "${!models[@]}"; do
        n=${#engines[@]}
        for ((k = 0; k < n; k++)); do
            e=${engines[$(((k + r + i) % n))]}
            [ -t 2 ] && printf '\rround %d/%d, %s: %s        ' $((r + 1)) "$rounds" "$(basename "${models[$i]}")" "$e" >&2
            run "$e" "${models[$i]}" "$out/$e.$r.$i.json"
        done
    done
done
[ -t 2 ] && printf '\r%60s\r' '' >&2

python3 - "$out" "${engines[@]}" -- "${models[@]}" <<'EOF'
import glob, json, os, statistics, sys
out = sys.argv[1]
sep = sys.argv.index('--')
engines, models = sys.argv[2:sep], sys.argv[sep + 1:]
# samples[(model index, threads, test)][engine] = [t/s, ...]
samples = {}
for e in engines:
    for path in glob.glob(os.path.join(out, f'{e}.*.json')):
        i = int(path.rsplit('.', 2)[1])
        try:
            rows = json.load(open(path))
        except (ValueError, OSError):
            continue
        for row in rows:
            test = f"pp{row['n_prompt']}" if row.get('n_prompt') else f"tg{row['n_gen']}"
            samples.setdefault((i, int(row['n_threads']), test), {}).setdefault(e, []).append(float(row['avg_ts']))
def med(key, e):
    v = samples.get(key, {}).get(e)
    return statistics.median(v) if v else None
cols = engines + ['/ llama.cpp'] + (['/ best ik'] if 'ik' in engines else [])
print('| model | threads | test | ' + ' | '.join(cols) + ' |')
print('|---|---:|---|' + '---:|' * len(cols))
for key in sorted(samples, key=lambda k: (k[0], k[1], k[2][:2] != 'pp', k[2])):
    i, t, test = key
    m = {e: med(key, e) for e in engines}
    cells = [f'{m[e]:.1f}' if m[e] else '-' for e in engines]
    ours = m['llamalite']
    ratio = lambda ref: f'{ours / ref:.2f}x' if ours and ref else '-'
    cells.append(ratio(m['llama.cpp']))
    if 'ik' in engines:
        best = max([v for v in (m['ik'], m['ik-rtr']) if v] or [0])
        cells.append(ratio(best))
    print(f'| {os.path.basename(models[i])} | {t} | {test} | ' + ' | '.join(cells) + ' |')
n = max((len(v) for s in samples.values() for v in s.values()), default=0)
print(f'\nmedians of {n} alternating runs per cell (tokens/s)')
EOF
