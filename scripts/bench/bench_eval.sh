#!/usr/bin/env bash
# scripts/bench/bench_eval.sh [THREADS]: fast evaluation and generation, side by side in one run.
#
#   1. score-mode eval, one row per label (the old path) vs the shared prompt in the KV cache,
#      on the demo shape (tiny model, MOSE_BENCH_DEMO_SAMPLES eval samples, default 540) and on
#      an Emotion-LLaMA-shaped random model (`small` decoder, 260 visual + 1 audio tokens, the
#      Emotion-LLaMA prompt, 9 labels; MOSE_BENCH_EL_SAMPLES samples, default 27);
#   2. greedy generation of MOSE_BENCH_NEW_TOKENS (default 64) tokens for 8 prompts on `small`:
#      cached vs uncached, then transformers' generate(use_cache=True) on the same model dir and
#      the same prompt embeddings (tokens/s ratio, same tokens).
#
# Every line starting with BENCH is a result; the paths' outputs are checked to agree.
# Inputs are written once into MOSE_BENCH_DIR (default .build/bench-eval).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
THREADS=${1:-1}
export MOSE_BENCH_THREADS=$THREADS OMP_NUM_THREADS=$THREADS
export MOSE_BENCH_DIR=${MOSE_BENCH_DIR:-$ROOT/.build/bench-eval}
mkdir -p "$MOSE_BENCH_DIR"
go test -run '^$' -bench 'ScoreEval|Generate$' -benchtime 1x -timeout 60m ./infer/ | grep -E '^(BENCH|--- FAIL|FAIL|ok)' || true
PY=$(scripts/setup/pyenv.sh)
"$PY" scripts/bench/bench_eval_hf.py "$MOSE_BENCH_DIR/generate.safetensors" "$THREADS" 2>&1 | grep -E '^BENCH|Error|error' || true
