#!/usr/bin/env bash
# Memory of a training step, measured against `mose validate`'s estimate, with
# and without activation checkpointing, side by side in one run: peak RSS
# (/usr/bin/time) and step time of a few `mose train` steps of the `small`
# preset (CPU, float32, MoSE 3/3/1 on q,v, dropout and gate noise on), at
# micro-batches of 8 × 512 and 8 × 1024 tokens.
#
#   scripts/bench/bench_memory.sh [STEPS]     (default 3: the first is left out of the step time)
#   MOSE_BIN=path/to/mose scripts/bench/bench_memory.sh
#   MOSE_BENCH_T=1024 scripts/bench/bench_memory.sh        (one batch shape only)
#   MOSE_BENCH_MALLOC=mmap scripts/bench/bench_memory.sh   (glibc serves every block over
#       128 KiB with mmap and unmaps it on free: RSS then follows the live tensors,
#       without the heap's high-water mark; the estimate counts live tensors)
#
# Every sample is made exactly data.max_len tokens long (the synthetic
# subtitles are repeated, then truncated to fit), so every micro-batch is
# 8 × max_len. "idle" is the peak RSS of `mose validate` on the same recipe
# (model, adapters and data loaded, nothing trained); "act" is the train
# peak minus it, compared with the estimate's activations.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ "${MOSE_BENCH_MALLOC:-}" = mmap ]; then
	export MALLOC_MMAP_THRESHOLD_=131072 # fixed: no dynamic raise of the threshold
fi
STEPS=${1:-3}
MOSE=${MOSE_BIN:-bin/mose}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
OUT=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$OUT"' EXIT
MODEL=runs/models/small
[ -d "$MODEL" ] || "$MOSE" init-model --preset small --out "$MODEL" >/dev/null
"$MOSE" synth-data --preset small --samples 64 --eval-samples 8 --out "$OUT/data" >/dev/null
python3 - "$OUT/data/train.jsonl" "$OUT/data/long.jsonl" <<'PY'
import json, sys
with open(sys.argv[1]) as f, open(sys.argv[2], "w") as g:
    for line in f:
        r = json.loads(line)
        r["subtitle"] = " ".join([r["subtitle"]] * 200)
        g.write(json.dumps(r) + "\n")
PY
common=(--recipe demo-tiny --set "model.path=$MODEL" --set model.create= --set data.synth=
	--set "data.train=$OUT/data/long.jsonl" --set data.eval= --set train.keep_best_by= --set train.batch_size=8 --set train.grad_accum=1
	--set run.threads=2 --set adapters.dropout=0.05 --set adapters.gate.noise=0.1 --set train.warmup_steps=0)
mib() { # "12.34 GiB" | "512 MiB" -> MiB
	awk '{ if ($2 == "GiB") printf "%.0f", $1 * 1024; else printf "%.0f", $1 }'
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores; run.threads=2; $STEPS steps per run; malloc: ${MOSE_BENCH_MALLOC:-default}; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-10s %-6s %10s %10s %6s %10s %10s %6s %10s\n" "batch" "ckpt" "peak RSS" "estimate" "ratio" "act" "est. act" "ratio" "ms/step"
declare -A STEP
for T in ${MOSE_BENCH_T:-512 1024}; do
	sets=("${common[@]}" --set "data.max_len=$T")
	/usr/bin/time -v "$MOSE" validate "${sets[@]}" >"$OUT/validate-$T.txt" 2>"$OUT/validate-$T.time"
	idle=$(awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$OUT/validate-$T.time")
	for ck in false true; do
		name="t$T-$ck"
		/usr/bin/time -v "$MOSE" train "${sets[@]}" --no-progress --log-level warn --set "run.output_dir=$OUT/$name" \
			--set "train.max_steps=$STEPS" --set train.eval_every=0 --set train.save_every=0 --set train.log_every=1 \
			--set "train.activation_checkpointing=$ck" >/dev/null 2>"$OUT/$name.time"
		peak=$(awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$OUT/$name.time")
		ms=$(python3 - "$OUT/$name/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r.get("kind") != "eval"][1:]  # drop the warm-up step
print("%.0f" % (1000 * sum(r["step_time_s"] for r in recs) / len(recs)))
PY
)
		STEP[$name]=$ms
		if [ "$ck" = true ]; then which="with checkpointing"; else which="without checkpointing"; fi
		est=$(grep -E "^ +(total +)?[0-9.]+ (GiB|MiB) $which" "$OUT/validate-$T.txt" | sed -E 's/^ +(total +)?//' | cut -d' ' -f1-2 | mib)
		if [ "$ck" = true ]; then
			estact=$(grep -E "^ +activations" "$OUT/validate-$T.txt" | sed -E 's/.*, ([0-9.]+ (GiB|MiB)) with$/\1/' | mib)
		else
			estact=$(grep -E "^ +activations" "$OUT/validate-$T.txt" | sed -E 's/^ +activations +([0-9.]+ (GiB|MiB)) without.*/\1/' | mib)
		fi
		act=$((peak - idle))
		printf "%-10s %-6s %7s MiB %7s MiB %6.2f %7s MiB %7s MiB %6.2f %10s\n" "8x$T" "$ck" "$peak" "$est" \
			"$(echo "$est / $peak" | bc -l)" "$act" "$estact" "$(echo "$estact / $act" | bc -l)" "$ms"
	done
	printf "%-10s %-6s step time with/without checkpointing: %.2f×\n" "8x$T" "" "$(echo "${STEP[t$T-true]} / ${STEP[t$T-false]}" | bc -l)"
done
echo "idle = peak RSS of mose validate (model, adapters, data loaded): act = peak RSS - idle"
