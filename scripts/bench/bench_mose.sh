#!/usr/bin/env bash
# MoSE overhead benchmark: forward + backward of a 512-token batch through the
# `small` model (CPU float32, adapters on q_proj and v_proj, r=16): plain LoRA,
# MoSE K=3/3/1 fused, and MoSE computed with a loop over groups and experts.
#
#   scripts/bench/bench_mose.sh [THREADS] [COUNT]     (defaults 1 and 3)
#
# Prints each variant's step time (median of COUNT runs of 5 steps) and the
# ratios to LoRA. Run it on an idle machine (see scripts/bench/bench_forward.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-1}
COUNT=${2:-3}
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
DIR="$CACHE/bench/small-seed1"
go build -o bin/mose ./cmd/mose
[ -f "$DIR/config.json" ] || bin/mose init-model --preset small --seed 1 --out "$DIR" >/dev/null 2>&1
export OMP_NUM_THREADS=$THREADS
out=$(MOSE_BENCH_MODEL="$DIR" go test -run '^$' -bench '^BenchmarkStep$' -benchtime 5x -count "$COUNT" ./experts/)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores, $THREADS thread(s)"
echo "$out" >"${TMPDIR:-/tmp}/bench_mose.out"
python3 - "${TMPDIR:-/tmp}/bench_mose.out" <<'PY'
import re, statistics, sys
t = {}
for line in open(sys.argv[1]):
    m = re.match(r"BenchmarkStep/([\w-]+?)-\d+\s+\d+\s+(\d+) ns/op", line)
    if m:
        t.setdefault(m.group(1), []).append(int(m.group(2)))
med = {k: statistics.median(v) for k, v in t.items()}
print("%-11s %9s %8s" % ("variant", "ms/step", "vs lora"))
for n in ["lora", "mose-fused", "mose-loop"]:
    print("%-11s %9.0f %8.2f" % (n, med[n] / 1e6, med[n] / med["lora"]))
print("fused vs loop: %.2f" % (med["mose-fused"] / med["mose-loop"]))
PY
