#!/usr/bin/env bash
# make demo: the whole pipeline on a tiny random model and synthetic data.
#
# 1. (first time) `mose init-model --preset tiny` and `mose synth-data`, via the
#    recipe's model.create / data.synth;
# 2. train MoSE with recipes/demo-tiny.yaml, plain LoRA at the same rank, and plain
#    LoRA at the rank whose trainable parameter count matches MoSE's (computed with
#    `mose validate`), all on the same data and schedule;
# 3. evaluate the final checkpoints with `mose eval` (score mode);
# 4. export the LoRA adapter in PEFT format;
# 5. print a per-subset summary with each run's trainable parameters.
#
# One seed: the summary is a demonstration, not evidence. The README's claims come
# from `go run ./cmd/compare` (several seeds, capacity-matched baselines).
#
# Small and synthetic on purpose: a 0.9M-parameter random decoder and a
# CA-MER-like dataset whose construction the README describes. It shows the
# machinery end to end in a few minutes on 2 CPU cores; it says nothing about
# real emotion recognition.
set -euo pipefail
cd "$(dirname "$0")/.."
MOSE=bin/mose
RUNS=runs
rm -rf "$RUNS/demo-tiny" "$RUNS/demo-tiny-lora" "$RUNS/demo-tiny-lora-matched"

# trainable SET...: the trainable parameter count `mose validate` reports.
trainable() {
	$MOSE validate --recipe recipes/demo-tiny.yaml --log-level warn "$@" | sed -n 's/.* \([0-9][0-9]*\) trainable parameters.*/\1/p'
}

echo "== training MoSE (recipes/demo-tiny.yaml)"
$MOSE train --recipe recipes/demo-tiny.yaml --no-progress --log-level warn
echo "== training plain LoRA on the same data"
$MOSE train --recipe recipes/demo-tiny.yaml --no-progress --log-level warn \
	--set run.name=demo-tiny-lora --set adapters.method=lora
# LoRA's trainable count is linear in the rank: two probes give the matched rank.
p_mose=$(trainable)
p1=$(trainable --set adapters.method=lora --set adapters.rank=1)
p2=$(trainable --set adapters.method=lora --set adapters.rank=2)
rank=$(( (2 * (p_mose - (2 * p1 - p2)) + (p2 - p1)) / (2 * (p2 - p1)) ))
echo "== training plain LoRA at MoSE's trainable parameters (rank $rank, alpha $((2 * rank)))"
$MOSE train --recipe recipes/demo-tiny.yaml --no-progress --log-level warn \
	--set run.name=demo-tiny-lora-matched --set adapters.method=lora \
	--set adapters.rank="$rank" --set adapters.alpha=$((2 * rank))

summary() { # run-dir -> one line per subset
	python3 - "$1/eval.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for s in ["video-aligned", "audio-aligned", "consistent", "all"]:
    m = r["subsets"].get(s)
    print(f"{s} {m['accuracy']*100:.1f} {m['uar']*100:.1f} {m['weighted_f1']*100:.1f}" if m else f"{s} - - -")
gap = r.get("conflict_gap")
print(f"gap {gap*100:+.1f}" if gap is not None else "gap -")
PY
}

echo "== evaluating the final checkpoints (mose eval)"
for run in demo-tiny demo-tiny-lora demo-tiny-lora-matched; do
	sets=()
	[ "$run" = demo-tiny-lora ] && sets=(--set adapters.method=lora)
	[ "$run" = demo-tiny-lora-matched ] && sets=(--set adapters.method=lora --set adapters.rank="$rank" --set adapters.alpha=$((2 * rank)))
	ck=$(ls -d "$RUNS/$run"/checkpoints/step-* | tail -1)
	$MOSE eval --recipe recipes/demo-tiny.yaml "${sets[@]}" --checkpoint "$ck" \
		--out "$RUNS/$run" --log-level warn >/dev/null
done

echo "== exporting the LoRA adapter in PEFT format"
ck=$(ls -d "$RUNS/demo-tiny-lora"/checkpoints/step-* | tail -1)
$MOSE export --checkpoint "$ck" --format peft --out "$RUNS/demo-tiny-lora/peft" --log-level warn

echo
echo "== summary: synthetic CA-MER-like eval set (540 samples), tiny random model"
printf "%-15s %22s %22s %22s\n" "" "MoSE (3/3/1, r=8)" "LoRA r=8" "LoRA r=$rank (matched)"
printf "%-15s %22s %22s %22s\n" "trainable" "$p_mose" "$(trainable --set adapters.method=lora)" \
	"$(trainable --set adapters.method=lora --set adapters.rank="$rank")"
printf "%-15s %7s %6s %7s  %7s %6s %7s  %7s %6s %7s\n" "subset" "ACC" "UAR" "wF1" "ACC" "UAR" "wF1" "ACC" "UAR" "wF1"
paste -d' ' <(summary "$RUNS/demo-tiny") <(summary "$RUNS/demo-tiny-lora") <(summary "$RUNS/demo-tiny-lora-matched") | awk '
$1 == "gap" { printf "%-15s %22s %22s %22s\n", "conflict gap", $2 " pp", $4 " pp", $6 " pp"; next }
{ printf "%-15s %7s %6s %7s  %7s %6s %7s  %7s %6s %7s\n", $1, $2, $3, $4, $6, $7, $8, $10, $11, $12 }'
echo
echo "One seed on toy data: compare MoSE with the capacity-matched LoRA, not with LoRA r=8."
echo "Means over seeds, with ablations: go run ./cmd/compare (see README, \"An honest comparison\")."
echo "runs: $RUNS/demo-tiny, $RUNS/demo-tiny-lora, $RUNS/demo-tiny-lora-matched (metrics.jsonl, plots, checkpoints/)"

# MoSE on a Qwen2.5-Omni thinker from a folder of raw clips: the random omni-tiny
# thinker and 27 synthetic mp4 clips (coloured backgrounds and tones, the three
# CA-MER subsets, a bar as the conflict cue), made on first use by the recipe's
# model.create / data.synth (`mose synth-data --media`). The clips are decoded and
# processed into the data cache when the data opens; the towers' outputs are cached
# on first use, so the second of the two epochs runs no tower. It shows the path from
# clips to a trained adapter working on a CPU; a random 64-wide model on colour and
# tone clips says nothing about emotion recognition (docs/media.md).
echo
ffmpeg_cached="${MOSE_CACHE:-$HOME/.cache/mose}/ffmpeg/ffmpeg"
if [ -n "${MOSE_FFMPEG:-}" ] || command -v ffmpeg >/dev/null 2>&1 || [ -x "$ffmpeg_cached" ]; then
	echo "== MoSE on omni-tiny (a Qwen2.5-Omni thinker) from raw clips (recipes/omni-tiny-media.yaml)"
	rm -rf "$RUNS/omni-tiny-media"
	start=$(date +%s)
	$MOSE train --recipe recipes/omni-tiny-media.yaml --no-progress --log-level warn
	python3 - "$RUNS/omni-tiny-media/metrics.jsonl" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if '"emotion_loss"' in l and '"eval' not in l]
first, last = recs[0], recs[-1]
print(f"{len(recs)} logged steps in {sys.argv[2]} s: emotion loss {first['emotion_loss']:.3f} at step {first['step']}, "
      f"{last['emotion_loss']:.3f} at step {last['step']} (27 clips, random omni-tiny: machinery, not accuracy)")
PY
	echo "== predict straight from one clip (decoded, processed and scored in one command)"
	ck="$RUNS/omni-tiny-media/checkpoints/$(cat "$RUNS/omni-tiny-media/checkpoints/latest")"
	$MOSE predict --checkpoint "$ck" --video runs/data/omni-tiny-media/clips/eval-0000.mp4 --use-audio-in-video \
		--subtitle "How does the person in this clip feel?" --log-level warn | sed -n 2,3p
	echo "clips and manifest: runs/data/omni-tiny-media; data cache: \${MOSE_CACHE:-~/.cache/mose}/data (docs/media.md)"
else
	echo "== SKIPPED: MoSE on omni-tiny from raw clips needs FFmpeg (make setup fetches one; or set MOSE_FFMPEG)"
fi
