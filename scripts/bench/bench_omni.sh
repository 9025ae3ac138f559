#!/usr/bin/env bash
# Qwen2.5-Omni's thinker: mose's training step (towers under no-grad, then the decoder's
# forward and backward with MoSE on q,v, AdamW) vs transformers + PEFT LoRA on q,v doing
# the same step on the same model dir and the same samples, CPU float32, side by side.
#
#   scripts/bench/bench_omni.sh [STEPS] [THREADS] [BATCH]     (defaults 20, 2, 2)
#   MOSE_BIN=... PYTHON=... scripts/bench/bench_omni.sh
#
# The model is a random omni-tiny (`init-model --preset omni-tiny --std 0.2`); the samples
# are the synthetic clips of data.synth omni-tiny (2 s videos with their audio, 622 tokens:
# 280 video, 50 audio), made with FFmpeg when it is there. Both sides train on the
# manifest's first BATCH samples every step (mose: train.batch_size BATCH over a set of
# exactly BATCH samples; PyTorch: the same files batched as the processor batches them),
# dropout 0, and report the mean step time after two warm-up steps. omni-small has no
# tokenizer for the answers, so only omni-tiny is measured. Run it on an idle machine:
# it prints the machine, both step times and their ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${1:-20}
THREADS=${2:-2}
BATCH=${3:-2}
MOSE=${MOSE_BIN:-bin/mose}
PY=${PYTHON:-$(scripts/setup/pyenv.sh)}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$MOSE" init-model --preset omni-tiny --std 0.2 --seed 4 --out "$W/model" >/dev/null
sets=(--set "model.path=$W/model" --set model.create= --set "data.train=$W/data/train.jsonl" --set data.synth=omni-tiny
	--set "data.synth_samples=$BATCH" --set "train.batch_size=$BATCH" --set "train.max_steps=$STEPS"
	--set train.log_every=1 --set train.save_every=0 --set adapters.dropout=0 --set adapters.method=mose
	--set "adapters.targets=[q_proj,v_proj]" --set "run.threads=$THREADS" --set "run.output_dir=$W/run")
OMP_NUM_THREADS=$THREADS "$MOSE" train --recipe omni-tiny-mose --no-progress --log-level warn "${sets[@]}" >/dev/null
mose_ms=$(python3 - "$W/run/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r.get("kind") != "eval"][2:]  # two warm-up steps
print(1000 * sum(r["step_time_s"] for r in recs) / len(recs))
PY
)
media=$(python3 -c "import json;print(json.load(open('$W/data/synth.json'))['media'])")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores; threads $THREADS; batch $BATCH; clips: $media"
OMP_NUM_THREADS=$THREADS "$PY" scripts/bench/bench_omni.py --model "$W/model" --manifest "$W/data/train.jsonl" \
	--batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --mose-ms "$mose_ms"
