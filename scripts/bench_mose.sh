#!/usr/bin/env bash
# MoSE overhead benchmark: forward + backward of a 512-token batch through the
# `small` model (CPU float32, adapters on q_proj and v_proj, r=16): plain LoRA,
# MoSE K=3/3/1 fused, and MoSE computed with a loop over groups and experts.
#
#   scripts/bench_mose.sh [THREADS] [COUNT]     (defaults 1 and 3)
#
# Prints each variant's step time (median of COUNT runs of 5 steps) and the
# ratios to LoRA. Run it on an idle machine (see scripts/bench_forward.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${1:-1}
COUNT=${2:-3}
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
DIR="$CACHE/bench/small-seed1"
go build -o bin/mose ./cmd/mose
[ -f "$DIR/config.json" ] || bin/mose init-model --preset small --seed 1 --out "$DIR" >/dev/null 2>&1
export OMP_NUM_THREADS=$THREADS
out=$(MOSE_BENCH_MODEL="$DIR" go test -run '^$' -bench '^BenchmarkStep$' -benchtime 5x -count "$COUNT" ./experts/)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $THREADS thread(s)"
echo "$out" | awk '
/^BenchmarkStep\// {
	split($1, p, "/"); name = p[2]; sub(/-[0-9]+$/, "", name)
	t[name] = t[name] " " $3
}
END {
	for (n in t) { k = split(t[n], v, " "); asort(v); med[n] = v[int((k + 1) / 2)] }
	printf "%-11s %10s %8s\n", "variant", "ms/step", "vs lora"
	for (i = 1; i <= 3; i++) {
		n = (i == 1 ? "lora" : i == 2 ? "mose-fused" : "mose-loop")
		printf "%-11s %10.0f %8.2f\n", n, med[n] / 1e6, med[n] / med["lora"]
	}
	printf "fused vs loop: %.2f\n", med["mose-fused"] / med["mose-loop"]
}'
