#!/usr/bin/env bash
# make demo: the whole pipeline on a tiny random model and synthetic data.
#
# 1. (first time) `mose init-model --preset tiny` and `mose synth-data`, via the
#    recipe's model.create / data.synth;
# 2. train MoSE with recipes/demo-tiny.yaml, and plain LoRA on the same data;
# 3. evaluate the final checkpoints with `mose eval` (score mode);
# 4. export the LoRA adapter in PEFT format (when `mose export` exists);
# 5. print a per-subset summary.
#
# Small and synthetic on purpose: a 0.9M-parameter random decoder and a
# CA-MER-like dataset whose construction the README describes. It shows the
# machinery end to end in a few minutes on 2 CPU cores; it says nothing about
# real emotion recognition.
set -euo pipefail
cd "$(dirname "$0")/.."
MOSE=bin/mose
RUNS=runs
rm -rf "$RUNS/demo-tiny" "$RUNS/demo-tiny-lora"

echo "== training MoSE (recipes/demo-tiny.yaml)"
$MOSE train --recipe recipes/demo-tiny.yaml --no-progress --log-level warn
echo "== training plain LoRA on the same data"
$MOSE train --recipe recipes/demo-tiny.yaml --no-progress --log-level warn \
	--set run.name=demo-tiny-lora --set adapters.method=lora

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
for run in demo-tiny demo-tiny-lora; do
	method=mose
	[ "$run" = demo-tiny-lora ] && method=lora
	ck=$(ls -d "$RUNS/$run"/checkpoints/step-* | tail -1)
	$MOSE eval --recipe recipes/demo-tiny.yaml --set adapters.method=$method --checkpoint "$ck" \
		--out "$RUNS/$run" --log-level warn >/dev/null
done

if $MOSE export --help >/dev/null 2>&1; then
	echo "== exporting the LoRA adapter in PEFT format"
	ck=$(ls -d "$RUNS/demo-tiny-lora"/checkpoints/step-* | tail -1)
	$MOSE export --checkpoint "$ck" --format peft --out "$RUNS/demo-tiny-lora/peft" --force --log-level warn
fi

echo
echo "== summary: synthetic CA-MER-like eval set (540 samples), tiny random model"
printf "%-15s %22s %22s\n" "" "MoSE (3/3/1 experts)" "plain LoRA"
printf "%-15s %7s %6s %7s  %7s %6s %7s\n" "subset" "ACC" "UAR" "wF1" "ACC" "UAR" "wF1"
paste -d' ' <(summary "$RUNS/demo-tiny") <(summary "$RUNS/demo-tiny-lora") | awk '
$1 == "gap" { printf "%-15s %22s %22s\n", "conflict gap", $2 " pp", $4 " pp"; next }
{ printf "%-15s %7s %6s %7s  %7s %6s %7s\n", $1, $2, $3, $4, $6, $7, $8 }'
echo
echo "runs: $RUNS/demo-tiny and $RUNS/demo-tiny-lora (metrics.jsonl, loss.png, expert_load.png, confusion.png, checkpoints/)"
