#!/usr/bin/env bash
# scripts/bench/bench_ddp.sh [--steps N] [--out FILE]: data parallelism on this
# machine, side by side in one run, on the demo recipe (tiny model, synthetic
# data, global batch 16, no evaluation):
#   A. 1 process  × 2 libtorch threads, train.batch_size 16
#   B. 2 processes × 1 thread (mose train --nproc 2, Gloo), train.batch_size 8 each
# It reports tokens/s, seconds per step and, for B, seconds per step spent in
# all-reduces (comm_time_s in metrics.jsonl), over the steps after the first
# log interval, and the largest loss difference between A and B. Run it with
# nothing else running: on 2 cores, other work distorts both figures.
# Needs bin/mose (make build).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
STEPS=100
OUT=""
while [ $# -gt 0 ]; do
	case "$1" in
	--steps) STEPS=$2; shift ;;
	--out) OUT=$2; shift ;;
	*) echo "bench_ddp: error: unknown argument $1; usage: scripts/bench/bench_ddp.sh [--steps N] [--out FILE]" >&2; exit 2 ;;
	esac
	shift
done
[ -x bin/mose ] || { echo "bench_ddp: error: bin/mose is missing; fix: make build" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/mose-bench-ddp.XXXXXX")
trap 'rm -rf "$W"' EXIT
common=(--recipe recipes/demo-tiny.yaml --no-progress --log-level warn --set data.eval= --set train.keep_best_by= --set train.max_steps="$STEPS" --set train.warmup_steps=5 --set train.log_every=10
	--set train.save_every=0 --set train.eval_every=0 --set run.tensorboard=false)
# The demo's model and data (made once by the first run if missing).
bin/mose train "${common[@]}" --set train.max_steps=1 --set train.warmup_steps=0 --set train.log_every=1 --set run.output_dir="$W/prep" >/dev/null
start=$(date +%s)
bin/mose train "${common[@]}" --set run.threads=2 --set train.batch_size=16 --set run.output_dir="$W/one"
bin/mose train "${common[@]}" --nproc 2 --set run.threads=1 --set train.batch_size=8 --set run.output_dir="$W/two"
python3 - "$W" "$STEPS" "$OUT" "$(($(date +%s) - start))" <<'EOF'
import json, os, platform, sys
w, steps, out, wall = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
def recs(name):
    return [json.loads(l) for l in open(os.path.join(w, name, "metrics.jsonl")) if '"kind":"train"' in l]
def summary(rs):
    rs = rs[1:]  # the first interval holds the start-up
    n = len(rs)
    return {"tokens_per_s": sum(r["tokens_per_s"] for r in rs) / n, "step_time_s": sum(r["step_time_s"] for r in rs) / n,
            "comm_time_s": sum(r.get("comm_time_s", 0) for r in rs) / n}
a, b = recs("one"), recs("two")
diff = max(abs(x["emotion_loss"] - y["emotion_loss"]) for x, y in zip(a, b))
cpu = "?"
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except Exception:
    pass
res = {"machine": f"{cpu}, {os.cpu_count()} cores, {platform.system()}", "steps": steps, "global_batch": 16, "wall_s": wall,
       "one_process_2_threads": summary(a), "two_processes_1_thread": summary(b), "max_logged_loss_diff": diff}
res["speedup"] = res["two_processes_1_thread"]["tokens_per_s"] / res["one_process_2_threads"]["tokens_per_s"]
res["comm_fraction"] = res["two_processes_1_thread"]["comm_time_s"] / res["two_processes_1_thread"]["step_time_s"]
print(f"machine: {res['machine']}; {steps} steps of 16 samples (demo recipe)")
print(f"{'run':26s} {'tokens/s':>9s} {'s/step':>8s} {'all-reduce s/step':>18s}")
for k, name in (("one_process_2_threads", "1 process x 2 threads"), ("two_processes_1_thread", "2 processes x 1 thread")):
    r = res[k]
    print(f"{name:26s} {r['tokens_per_s']:9.0f} {r['step_time_s']:8.4f} {r['comm_time_s']:18.4f}")
print(f"2x1 / 1x2 tokens/s: {res['speedup']:.2f}; all-reduce share of a 2-rank step: {100 * res['comm_fraction']:.1f}%; "
      f"max |loss(1x16) - loss(2x8)| = {diff:.2g}")
if out:
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
EOF
