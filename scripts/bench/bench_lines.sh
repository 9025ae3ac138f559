#!/usr/bin/env bash
# libtorch 2.1 vs 2.11, side by side in one run: the same benchmarks built
# against each line (into dist/bench/<line>/), then run alternately.
#
#   scripts/bench/bench_lines.sh [STEPS] [COUNT]     (defaults 20 and 2; STEPS >= 20, the demo's warmup)
#
# Per line: bin/mose (for scripts/bench/bench_train.sh: `mose train` tokens/s and
# ms/step, tiny and small presets), model.test (BenchmarkForward: the `small`
# model's forward, (2,256) batch), experts.test (BenchmarkStep/mose-fused: a
# MoSE forward+backward through `small`). Each benchmark runs COUNT times per
# line, alternating lines, and the table shows the median; the last column is
# 2.11/2.1 (below 1: 2.11 faster). CPU float32; the forward and step benchmarks use
# OMP_NUM_THREADS (default 2), `mose train` the recipe's run.threads (2).
# The checkout's setup is restored at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-20}
COUNT=${2:-2}
LINES=(2.1 2.11)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
OUT=dist/bench
prev=$(sed -n 's/^TORCH_LINE=//p' .build/setup.env 2>/dev/null || true)
trap 'MOSE_TORCH=${prev:-} scripts/setup/setup.sh >/dev/null 2>&1 || echo "bench_lines: run make setup" >&2' EXIT

for line in "${LINES[@]}"; do
	echo "== building against libtorch $line" >&2
	MOSE_TORCH=$line MOSE_DEVICE=cpu scripts/setup/setup.sh 2>&1 | tail -1 >&2
	mkdir -p "$OUT/$line"
	go build -o "$OUT/$line/mose" ./cmd/mose
	go test -c -o "$OUT/$line/model.test" ./model
	go test -c -o "$OUT/$line/experts.test" ./experts
	sed -n 's/^TORCH_VERSION=//p' .build/setup.env >"$OUT/$line/version"
done
DIR="$CACHE/bench/small-seed1"
[ -f "$DIR/config.json" ] || "$OUT/${LINES[0]}/mose" init-model --preset small --seed 1 --out "$DIR" >/dev/null 2>&1

res=$OUT/results.txt
: >"$res"
for i in $(seq "$COUNT"); do
	for line in "${LINES[@]}"; do
		echo "== round $i, libtorch $line" >&2
		ns=$(cd model && MOSE_BENCH_MODEL="$DIR" "../$OUT/$line/model.test" -test.run '^$' -test.bench '^BenchmarkForward$' \
			-test.benchtime 5x | awk '/^BenchmarkForward/ {print $3}')
		echo "$line forward_ms $((ns / 1000000))" >>"$res"
		ns=$(cd experts && MOSE_BENCH_MODEL="$DIR" "../$OUT/$line/experts.test" -test.run '^$' \
			-test.bench '^BenchmarkStep$/^mose-fused$' -test.benchtime 3x | awk '/^BenchmarkStep/ {print $3}')
		echo "$line mose_step_ms $((ns / 1000000))" >>"$res"
		MOSE_BIN="$OUT/$line/mose" scripts/bench/bench_train.sh "$STEPS" | awk -v l="$line" '
			/tokens\/s/ { printf "%s train_%s_tokens_per_s %s\n%s train_%s_ms_per_step %s\n%s train_%s_peak_rss_mib %s\n", l, $1, $2, l, $1, $4, l, $1, $8 }' >>"$res"
	done
done

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores, OMP_NUM_THREADS=$OMP_NUM_THREADS; $STEPS train steps, median of $COUNT"
python3 - "$res" "$(cat "$OUT/2.1/version")" "$(cat "$OUT/2.11/version")" <<'PY'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    l, k, v = line.split()
    vals.setdefault(k, {}).setdefault(l, []).append(float(v))
print(f"| benchmark | libtorch {sys.argv[2]} | libtorch {sys.argv[3]} | 2.11/2.1 |")
print("|---|---:|---:|---:|")
for k, by in vals.items():
    a, b = statistics.median(by["2.1"]), statistics.median(by["2.11"])
    print(f"| {k} | {a:.0f} | {b:.0f} | {b / a:.2f} |")
PY
