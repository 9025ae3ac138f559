#!/usr/bin/env bash
# Qwen2.5-Omni's thinker: mose's training step (towers under no-grad, then the decoder's
# forward and backward with adapters on q,v, AdamW) vs transformers + PEFT LoRA on q,v doing
# the same step on the same model dir and the same samples, CPU float32, side by side.
#
#   scripts/bench/bench_omni.sh [PRESET] [STEPS] [THREADS] [BATCH]   (defaults omni-tiny 20 2 2)
#   MOSE_BIN=... PYTHON=... scripts/bench/bench_omni.sh omni-small
#
# The model is a random `init-model --preset PRESET --std 0.2` (omni-tiny: d=64, 2 layers;
# omni-small: d=256, 4 layers, Qwen2.5-Omni's 151936-token vocabulary); the samples are
# `synth-data --media` clips (2 s mp4 with their audio, use_audio_in_video), each run
# through `mose preprocess` once, so that both sides read the same processor-outputs
# files. Both train on those BATCH samples every step, dropout 0, and report the mean
# step time after two warm-up steps. mose runs three times: MoSE 3/2/1 (rank 8) and
# plain LoRA (rank 8, PyTorch's configuration) with data.encoder_cache false (the towers
# run in every step, as in PyTorch), and MoSE with the encoder cache (towers from the
# cache after the first step: what a mose user's second epoch costs). Run it on an idle
# machine: it prints the machine, the step times and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=${1:-omni-tiny}
STEPS=${2:-20}
THREADS=${3:-2}
BATCH=${4:-2}
MOSE=${MOSE_BIN:-bin/mose}
PY=${PYTHON:-$(scripts/setup/pyenv.sh)}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$MOSE" init-model --preset "$PRESET" --std 0.2 --seed 4 --out "$W/model" >/dev/null
"$MOSE" synth-data --media --out "$W/clips" --samples "$BATCH" --log-level warn >/dev/null
mkdir -p "$W/data"
python3 - "$W/clips/train.jsonl" "$W/data/train.jsonl" > "$W/preprocess.args" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
with open(dst, "w") as out:
    for i, l in enumerate(open(src)):
        s = json.loads(l)
        f = f"s{i}.safetensors"
        print("\t".join([os.path.join(os.path.dirname(src), s["video"]), s["subtitle"], os.path.join(os.path.dirname(dst), f)]))
        out.write(json.dumps({"id": s["id"], "subset": s["subset"], "label": s["label"], "inputs": f}) + "\n")
PY
while IFS=$'\t' read -r video subtitle out; do
	"$MOSE" preprocess --model "$W/model" --video "$video" --use-audio-in-video --subtitle "$subtitle" --out "$out" >/dev/null
done < "$W/preprocess.args"
mose_ms() { # $1: run name, then --set pairs
	local run=$1
	shift
	OMP_NUM_THREADS=$THREADS "$MOSE" train --recipe omni-tiny-mose --no-progress --log-level warn \
		--set "model.path=$W/model" --set model.create= --set "data.train=$W/data/train.jsonl" --set data.synth= \
		--set data.eval= --set "data.cache_dir=$W/cache-$run" --set "train.batch_size=$BATCH" --set "train.max_steps=$STEPS" \
		--set train.log_every=1 --set train.save_every=0 --set adapters.dropout=0 \
		--set "adapters.targets=[q_proj,v_proj]" --set "run.threads=$THREADS" --set "run.output_dir=$W/$run" "$@" >/dev/null 2>&1
	python3 - "$W/$run/metrics.jsonl" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
recs = [r for r in recs if r.get("kind") != "eval"][2:]  # two warm-up steps
print(1000 * sum(r["step_time_s"] for r in recs) / len(recs))
PY
}
mose=$(mose_ms mose --set adapters.method=mose --set data.encoder_cache=false)
lora=$(mose_ms lora --set adapters.method=lora --set data.encoder_cache=false)
cached=$(mose_ms cached --set adapters.method=mose)
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores; preset $PRESET; threads $THREADS; batch $BATCH"
OMP_NUM_THREADS=$THREADS "$PY" scripts/bench/bench_omni.py --model "$W/model" --manifest "$W/data/train.jsonl" \
	--batch "$BATCH" --steps "$STEPS" --threads "$THREADS" --mose-ms "$mose" --mose-lora-ms "$lora" --mose-cached-ms "$cached"
