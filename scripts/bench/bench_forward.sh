#!/usr/bin/env bash
# Forward-pass benchmark: mose vs transformers on the same `small` model dir,
# CPU float32, a (2,256) batch, logits at every position, same thread count.
#
#   scripts/bench/bench_forward.sh [THREADS]     (default 1)
#
# Needs `make setup` and the Python venv (scripts/setup/pyenv.sh). Prints both times
# and the ratio mose/transformers (below 1 means mose is faster). Run it on an
# idle machine: with a busy second core, OpenMP's spinning threads slow both
# sides by several times.
set -euo pipefail
cd "$(dirname "$0")/../.."
THREADS=${1:-1}
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
PY=$(scripts/setup/pyenv.sh)
DIR="$CACHE/bench/small-seed1"
go build -o bin/mose ./cmd/mose
[ -f "$DIR/config.json" ] || bin/mose init-model --preset small --seed 1 --out "$DIR" >/dev/null 2>&1
export OMP_NUM_THREADS=$THREADS
go_ns=$(MOSE_BENCH_MODEL="$DIR" go test -run '^$' -bench '^BenchmarkForward$' -benchtime 10x ./model/ |
	awk '/^BenchmarkForward/ {print $3}')
out=$("$PY" scripts/bench/bench_forward.py "$DIR" --threads "$THREADS" --attn eager 2>/dev/null | tail -1)
py_ns=$(echo "$out" | awk '{print $3}')
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc --all) cores, $THREADS thread(s)"
echo "mose forward:         $((go_ns / 1000000)) ms"
echo "transformers forward: $((${py_ns%.*} / 1000000)) ms (eager attention; torch 2.1.0's sdpa path needs transformers' torch>=2.1.1 check)"
awk -v a="$go_ns" -v b="$py_ns" 'BEGIN {printf "ratio mose/transformers: %.2f\n", a / b}'
