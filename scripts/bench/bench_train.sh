#!/usr/bin/env bash
# Training throughput: tokens/s, step time and peak RSS of `mose train` on the
# demo (tiny) and on the `small` preset, CPU float32, MoSE 3/3/1 on q,v.
#
#   scripts/bench/bench_train.sh [STEPS]     (default 60; eval and checkpoints off)
#   MOSE_BIN=dist/bench/2.11/mose scripts/bench/bench_train.sh 20   (a prebuilt binary; see bench_lines.sh)
#
# Tokens are non-pad input tokens (prompt, features and answer). The first
# log interval (warm-up) is left out of the mean. Peak RSS is /usr/bin/time's.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-60}
MOSE=${MOSE_BIN:-bin/mose}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
run() { # name, extra --set args...
	local name=$1
	shift
	local sets=(--set "run.output_dir=$OUT/$name" --set "train.max_steps=$STEPS" --set train.eval_every=0
		--set train.save_every=0 --set train.log_every=10 --set train.keep_best_by= --set data.eval=)
	for s in "$@"; do sets+=(--set "$s"); done
	/usr/bin/time -v "$MOSE" train --recipe demo-tiny --no-progress --log-level warn "${sets[@]}" \
		>/dev/null 2>"$OUT/$name.time"
	local rss tps
	rss=$(awk -F: '/Maximum resident/ {print $2}' "$OUT/$name.time" | xargs)
	tps=$(python3 - "$OUT/$name/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r.get("kind") != "eval"][1:]  # drop the warm-up interval
print(sum(r["tokens_per_s"] for r in recs) / len(recs), 1000 * sum(r["step_time_s"] for r in recs) / len(recs))
PY
)
	printf "%-6s %10.0f tokens/s  %7.0f ms/step  peak RSS %6.0f MiB\n" "$name" ${tps} "$(echo "$rss / 1024" | bc -l)"
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores; run.threads=2"
run tiny
run small model.path=runs/models/small model.create=small data.synth=small \
	data.train=runs/data/synth-small/train.jsonl train.batch_size=8
