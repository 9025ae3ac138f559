#!/usr/bin/env bash
# scripts/checks/soak.sh: a long demo run that checks memory stays flat across
# evaluations (not part of make test; minutes to an hour).
#
# Trains recipes/demo-tiny.yaml for STEPS steps (default 5000) with an
# evaluation every EVAL_EVERY steps (default 500), samples the process's RSS
# every half second, and prints RSS after the first evaluation, after each
# one, at the end, and the peak. Exits 1 when RSS after the last in-training
# evaluation is more than LIMIT_PCT (default 10) % above RSS after the first.
#
#   scripts/checks/soak.sh                        # the full soak
#   STEPS=1000 EVAL_EVERY=100 scripts/checks/soak.sh   # a short one
#   EXTRA="--set train.batch_size=4" scripts/checks/soak.sh   # more recipe overrides
set -euo pipefail
cd "$(dirname "$0")/../.."
STEPS=${STEPS:-5000}
EVAL_EVERY=${EVAL_EVERY:-500}
LIMIT_PCT=${LIMIT_PCT:-10}
MOSE=${MOSE:-bin/mose}
OUT=${OUT:-runs/soak}
[ -x "$MOSE" ] || make build >/dev/null
rm -rf "$OUT"
mkdir -p "$OUT"

"$MOSE" train --recipe recipes/demo-tiny.yaml --no-progress --log-level warn \
	--set run.output_dir="$OUT" --set train.max_steps="$STEPS" --set train.eval_every="$EVAL_EVERY" \
	--set train.save_every="$EVAL_EVERY" --set train.log_every=100 ${EXTRA:-} >"$OUT.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }
evals() { grep -c '"kind":"eval"' "$OUT/metrics.jsonl" 2>/dev/null || true; }

want=$(( STEPS / EVAL_EVERY ))       # eval lines once the run is done (the last is the final eval)
[ $(( STEPS % EVAL_EVERY )) -ne 0 ] && want=$(( want + 1 ))
seen=0 peak=0 first="" last="" after=()
while kill -0 "$pid" 2>/dev/null; do
	r=$(rss "$pid")
	[ -n "$r" ] || break
	[ "$r" -gt "$peak" ] && peak=$r
	n=$(evals)
	n=${n:-0}
	if [ "$n" -gt "$seen" ]; then
		sleep 2 # training has resumed after the evaluation
		r=$(rss "$pid")
		[ -n "$r" ] || break
		seen=$n
		after+=("$r")
		[ -z "$first" ] && first=$r
		[ "$n" -lt "$want" ] && last=$r # after in-training evaluations only
	fi
	sleep 0.5
done
wait "$pid" || { echo "soak: mose train failed, see $OUT.log"; tail -5 "$OUT.log"; exit 1; }
trap - EXIT
if [ -z "$first" ] || [ -z "$last" ]; then
	echo "soak: too few evaluations observed (STEPS=$STEPS EVAL_EVERY=$EVAL_EVERY)"
	exit 1
fi
pct=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%+.1f", 100 * (b - a) / a }')
echo "soak: $STEPS steps, an evaluation every $EVAL_EVERY"
echo "soak: RSS after each evaluation (MiB): $(for r in "${after[@]}"; do printf '%d ' $((r / 1024)); done)"
echo "soak: RSS after the first evaluation $((first / 1024)) MiB, after the last in-training one $((last / 1024)) MiB ($pct %), peak $((peak / 1024)) MiB"
awk -v p="$pct" -v l="$LIMIT_PCT" 'BEGIN { exit !(p <= l) }' || { echo "soak: RSS grew more than $LIMIT_PCT %"; exit 1; }
echo "soak: OK (within $LIMIT_PCT %)"
