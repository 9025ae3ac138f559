#!/usr/bin/env bash
# Quantized frozen weights (model.quantize), side by side in one run, on the CPU:
#   - memory: peak RSS (/usr/bin/time) of a few `mose train` steps and `mose validate`'s
#     estimate (live tensors), for float32, bfloat16, int8 and nf4 frozen weights, on the
#     `small` preset and the LLaMA-3.2-1B-shaped decoder (`init-model --size 1b`);
#   - step time: nf4 and int8 against a bfloat16 base, and each against the PyTorch
#     reference on the same base (transformers + PEFT LoRA with torchao's NF4Tensor /
#     Int8Tensor frozen linears: scripts/bench/bench_quant_ref.py), as ratios.
# LoRA r=8 on q,v, micro-batch 8 × the synthetic `small` samples, activation
# checkpointing on (mose and the reference), run.threads as THREADS.
#
#   scripts/bench/bench_quant.sh [STEPS]            (default 4; the first step is left out of the step time)
#   MOSE_BENCH_SIZES=small scripts/bench/bench_quant.sh      (default "small 1b")
#   MOSE_BIN=path/to/mose  PYTHON=path/to/python  THREADS=2
#   MOSE_BENCH_MEM=1 MOSE_BENCH_SIZES="small mid" scripts/bench/bench_quant.sh 6
#       memory only: bf16 none/int8/nf4, each trained also with MALLOC_MMAP_THRESHOLD_=131072
#       (every block over 128 KiB mapped on its own: RSS follows the live tensors) and no
#       reference; "mid" is a decoder between the two (d=1024, 8 layers, MLP 4096)
#
# The reference needs a Python with torch 2.11, transformers, peft and torchao 0.18.0
# (PYTHON, or the venv of scripts/setup/pyenv.sh); without one its columns are "-".
# Run it on an idle machine: it trains 6 mose runs and 3 reference runs per size.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-4}
THREADS=${THREADS:-2}
MOSE=${MOSE_BIN:-bin/mose}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
PY=${PYTHON:-}
if [ -z "$PY" ] && [ -x "${MOSE_CACHE:-$HOME/.cache/mose}/venv/bin/python" ]; then
	PY="${MOSE_CACHE:-$HOME/.cache/mose}/venv/bin/python"
fi
if [ -n "$PY" ] && ! "$PY" -c 'import torchao, peft; assert torchao.__version__.startswith("0.18.0")' 2>/dev/null; then
	echo "note: $PY has no torchao 0.18.0 and peft: the reference is not run" >&2
	PY=
fi
OUT=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$OUT"' EXIT
"$MOSE" synth-data --preset small --samples 64 --eval-samples 8 --out "$OUT/data" >/dev/null
mib() { awk '{ if ($2 == "GiB") printf "%.0f", $1 * 1024; else printf "%.0f", $1 }'; }
steptime() { # metrics.jsonl -> "ms/step tokens/step" (the first step dropped)
	python3 - "$1" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r.get("kind") != "eval"][1:]
st = sum(r["step_time_s"] for r in recs) / len(recs)
tok = sum(r["tokens_per_s"] * r["step_time_s"] for r in recs) / len(recs)
print("%.0f %.0f" % (1000 * st, tok))
PY
}
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores; run.threads=$THREADS; $STEPS steps per run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for SIZE in ${MOSE_BENCH_SIZES:-small 1b}; do
	MODEL=runs/models/bench-quant-$SIZE
	if [ ! -d "$MODEL" ]; then
		if [ "$SIZE" = 1b ]; then
			"$MOSE" init-model --preset small --size 1b --dtype bfloat16 --out "$MODEL" >/dev/null
		elif [ "$SIZE" = mid ]; then
			"$MOSE" init-model --preset small --hidden 1024 --layers 8 --intermediate 4096 --heads 16 --kv-heads 4 \
				--dtype bfloat16 --out "$MODEL" >/dev/null
		else
			"$MOSE" init-model --preset "$SIZE" --out "$MODEL" >/dev/null
		fi
	fi
	echo
	echo "== $SIZE ($MODEL)"
	combos=("float32 none" "bfloat16 none" "float32 int8" "float32 nf4" "bfloat16 int8" "bfloat16 nf4")
	if [ -n "${MOSE_BENCH_MEM:-}" ]; then
		combos=("bfloat16 none" "bfloat16 int8" "bfloat16 nf4")
		printf "%-9s %-5s %12s %12s %12s %16s\n" dtype quant "weights est" "total est" "peak RSS" "peak RSS (mmap)"
	else
		printf "%-9s %-5s %12s %12s %12s %10s %10s\n" dtype quant "weights est" "total est" "peak RSS" "ms/step" "vs bf16"
	fi
	declare -A MS=()
	TOK=0
	for combo in "${combos[@]}"; do
		set -- $combo
		dt=$1 q=$2 name="$SIZE-$1-$2"
		sets=(--recipe demo-tiny --set "model.path=$MODEL" --set model.create= --set data.synth= --set "data.train=$OUT/data/train.jsonl"
			--set data.eval= --set train.keep_best_by= --set train.batch_size=8 --set train.grad_accum=1 --set "run.threads=$THREADS"
			--set adapters.method=lora --set "adapters.targets=[q_proj,v_proj]" --set adapters.rank=8 --set adapters.alpha=16
			--set train.activation_checkpointing=true --set train.warmup_steps=0 --set "model.dtype=$dt" --set "model.quantize=$q")
		"$MOSE" validate "${sets[@]}" >"$OUT/$name.validate" 2>&1
		west=$(grep -E "^ +frozen weights" "$OUT/$name.validate" | awk '{print $3, $4}' | mib)
		test=$(grep -E "with checkpointing" "$OUT/$name.validate" | grep -v activations | sed -E 's/^ +(total +)?//' | cut -d' ' -f1-2 | mib)
		/usr/bin/time -v "$MOSE" train "${sets[@]}" --no-progress --log-level warn --set "run.output_dir=$OUT/$name" \
			--set "train.max_steps=$STEPS" --set train.eval_every=0 --set train.save_every=0 --set train.log_every=1 \
			>/dev/null 2>"$OUT/$name.time"
		peak=$(awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$OUT/$name.time")
		if [ -n "${MOSE_BENCH_MEM:-}" ]; then
			MALLOC_MMAP_THRESHOLD_=131072 /usr/bin/time -v "$MOSE" train "${sets[@]}" --no-progress --log-level warn \
				--set "run.output_dir=$OUT/$name-mmap" --set "train.max_steps=$STEPS" --set train.eval_every=0 \
				--set train.save_every=0 --set train.log_every=1 >/dev/null 2>"$OUT/$name-mmap.time"
			mpeak=$(awk -F: '/Maximum resident/ {printf "%.0f", $2 / 1024}' "$OUT/$name-mmap.time")
			printf "%-9s %-5s %8s MiB %8s MiB %8s MiB %12s MiB\n" "$dt" "$q" "$west" "$test" "$peak" "$mpeak"
			continue
		fi
		read -r ms tok < <(steptime "$OUT/$name/metrics.jsonl")
		MS[$dt-$q]=$ms
		TOK=$tok
		vs=-
		[ -n "${MS[bfloat16-none]:-}" ] && vs=$(printf "%.2f×" "$(echo "$ms / ${MS[bfloat16-none]}" | bc -l)")
		printf "%-9s %-5s %8s MiB %8s MiB %8s MiB %10s %10s\n" "$dt" "$q" "$west" "$test" "$peak" "$ms" "$vs"
	done
	[ -n "$PY" ] && [ -z "${MOSE_BENCH_MEM:-}" ] || continue
	seq=$(( (TOK + 4) / 8 ))
	printf "%-9s %-5s %12s %12s %16s\n" dtype quant "ref ms/step" "ref peak RSS" "mose / reference"
	for q in none int8 nf4; do
		res=$(OMP_NUM_THREADS=$THREADS "$PY" scripts/bench/bench_quant_ref.py --model "$MODEL" --quantize "$q" --dtype bfloat16 \
			--batch 8 --seq "$seq" --steps "$STEPS" --threads "$THREADS" --checkpointing 2>"$OUT/ref-$SIZE-$q.log" | tail -1)
		rms=$(echo "$res" | python3 -c 'import json,sys; print("%.0f" % (1000 * json.load(sys.stdin)["step_time_s"]))')
		rrss=$(echo "$res" | python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["peak_rss_mib"])')
		printf "%-9s %-5s %12s %8s MiB %15.2f×\n" bfloat16 "$q" "$rms" "$rrss" "$(echo "${MS[bfloat16-$q]} / $rms" | bc -l)"
	done
done
