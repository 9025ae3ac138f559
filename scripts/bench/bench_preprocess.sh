#!/usr/bin/env bash
# Preprocessing clips/s, mose vs transformers' processor, on the same clips, one run:
# see bench_preprocess.py. Run on an idle machine.
#
#   scripts/bench/bench_preprocess.sh [REPS]      (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$(scripts/setup/pyenv.sh)}
FFMPEG=${MOSE_FFMPEG:-$(scripts/setup/ffmpeg.sh)}
MOSE=${MOSE_BIN:-bin/mose}
[ -n "${MOSE_BIN:-}" ] || go build -o bin/mose ./cmd/mose
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
"$PY" scripts/bench/bench_preprocess.py --mose "$MOSE" --ffmpeg "$FFMPEG" --work "$W" --reps "${1:-3}"
