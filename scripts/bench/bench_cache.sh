#!/usr/bin/env bash
# The encoder-output cache, measured: MoSE training steps on a Qwen2.5-Omni thinker from
# raw clips, epoch 1 (the frozen towers run on every sample and their outputs are written
# to the cache) vs epoch 2 (every sample's tower outputs come from the cache), in one run,
# then a second run on the same cache (its epoch 1 is a cache hit too).
#
#   scripts/bench/bench_cache.sh [PRESET] [CLIPS] [BATCH] [THREADS]   (defaults omni-small 12 2 2)
#
# The model is a random `init-model --preset PRESET` (omni-small: d=256, 4 layers,
# Qwen2.5-Omni's vocabulary); the data are `synth-data --media` clips (2 s mp4 with their
# audio, use_audio_in_video) in a fresh data cache. The processor runs when the dataset
# opens (its time is printed apart: it is not part of a step). Step times are the
# medians of metrics.jsonl's step_time_s per epoch (the first step of each run left
# out: warm-up). Run it on an idle machine; it prints the machine and the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=${1:-omni-small}
CLIPS=${2:-12}
BATCH=${3:-2}
THREADS=${4:-2}
MOSE=${MOSE_BIN:-bin/mose}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$MOSE" init-model --preset "$PRESET" --out "$W/model" >/dev/null
"$MOSE" synth-data --media --out "$W/data" --samples "$CLIPS" --log-level warn >/dev/null
STEPS=$((2 * CLIPS / BATCH))
sets=(--set "model.path=$W/model" --set model.create= --set "data.train=$W/data/train.jsonl" --set data.synth=
	--set data.eval= --set "data.cache_dir=$W/cache" --set "train.batch_size=$BATCH" --set "train.max_steps=$STEPS"
	--set train.log_every=1 --set train.save_every=0 --set "run.threads=$THREADS")
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores; preset $PRESET; $CLIPS clips; batch $BATCH; threads $THREADS"
for run in 1 2; do
	t0=$(date +%s.%N)
	OMP_NUM_THREADS=$THREADS "$MOSE" train --recipe omni-tiny-media --no-progress --log-level warn "${sets[@]}" \
		--set "run.output_dir=$W/run$run" >/dev/null
	t1=$(date +%s.%N)
	python3 - "$W/run$run/metrics.jsonl" "$((CLIPS / BATCH))" "$run" "$(echo "$t1 - $t0" | bc)" <<'PY'
import json, statistics, sys
path, per_epoch, run, wall = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
recs = [json.loads(l) for l in open(path) if l.strip()]
steps = {r["step"]: r["step_time_s"] for r in recs if "step_time_s" in r and r.get("kind") != "eval"}
e1 = [t for s, t in steps.items() if 2 <= s <= per_epoch]
e2 = [t for s, t in steps.items() if s > per_epoch]
m1, m2 = statistics.median(e1), statistics.median(e2)
spent = sum(steps.values())
print(json.dumps({"run": int(run), "epoch1_median_step_s": round(m1, 4), "epoch2_median_step_s": round(m2, 4),
                  "epoch1_over_epoch2": round(m1 / m2, 2), "steps": len(steps), "wall_s": round(wall, 1),
                  "outside_steps_s": round(wall - spent, 1)}))
PY
done
