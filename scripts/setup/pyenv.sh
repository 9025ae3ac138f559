#!/usr/bin/env bash
# scripts/setup/pyenv.sh: the Python reference environment used to generate golden fixtures.
#
#   scripts/setup/pyenv.sh            create or update the venv, print its python's path
#   "$(scripts/setup/pyenv.sh)" scripts/fixtures/make_fixtures.py
#
# The venv lives outside the clone, in ${MOSE_CACHE:-~/.cache/mose}/venv, and holds the
# exact versions pinned in scripts/fixtures/requirements-fixtures.txt (torch 2.1.0 from PyPI with
# its CUDA wheels, transformers, peft, tokenizers, safetensors). Wheels are downloaded
# once into ${MOSE_CACHE}/wheels (a torch wheel already there is reused) and installed
# from that folder without an index.
#
# Idempotent: a venv whose stamp matches the requirements file's hash is left alone, so
# a second run downloads nothing and returns at once. Only the Go tests' fixtures need
# this environment; the Go tests themselves never run Python.
#
# Environment: MOSE_CACHE, MOSE_PYTHON (interpreter to build the venv with; it must be
# CPython 3.8-3.11, the versions torch 2.1.0 has wheels for).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
VENV=$CACHE/venv
WHEELS=$CACHE/wheels
REQ=$ROOT/scripts/fixtures/requirements-fixtures.txt
STAMP=$VENV/.mose-requirements.sha256

die() {
	echo "pyenv: error: $1" >&2
	shift
	for line in "$@"; do echo "pyenv:   $line" >&2; done
	exit 1
}
info() { echo "pyenv: $*" >&2; }

[[ -f $REQ ]] || die "$REQ not found"
want=$(sha256sum "$REQ" | cut -d' ' -f1)

if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
	echo "$VENV/bin/python"
	exit 0
fi

# Pick an interpreter torch 2.1.0 has wheels for.
pick_python() {
	local cand
	for cand in ${MOSE_PYTHON:-} python3.11 python3.10 python3.9 python3; do
		[[ -n $cand ]] || continue
		command -v "$cand" >/dev/null 2>&1 || continue
		if "$cand" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 11) else 1)' 2>/dev/null; then
			echo "$cand"
			return 0
		fi
	done
	return 1
}
PY=$(pick_python) || die "no CPython 3.8-3.11 found (torch 2.1.0 has no wheel for newer Pythons)" \
	"fix: install python3.11 or point MOSE_PYTHON at one"

mkdir -p "$CACHE" "$WHEELS"

if [[ ! -x $VENV/bin/python ]]; then
	info "creating venv $VENV with $("$PY" --version 2>&1)"
	"$PY" -m venv "$VENV"
fi
VPY=$VENV/bin/python
# A venv built by another interpreter version cannot take these wheels: rebuild it.
if ! "$VPY" -c 'import sys; sys.exit(0 if (3, 8) <= sys.version_info[:2] <= (3, 11) else 1)'; then
	info "venv python is not 3.8-3.11; recreating it"
	rm -rf "$VENV"
	"$PY" -m venv "$VENV"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1
# Fetch what the wheel folder lacks (files already there are not downloaded again),
# then install from that folder alone, so the venv holds exactly the pinned set.
info "fetching pinned wheels into $WHEELS (first run: ~3 GB with torch's CUDA wheels)"
"$VPY" -m pip download --quiet --only-binary=:all: --find-links "$WHEELS" -d "$WHEELS" -r "$REQ" ||
	die "pip download failed" "check that PyPI is reachable and that $REQ pins existing versions"
info "installing into $VENV"
"$VPY" -m pip install --quiet --no-index --find-links "$WHEELS" -r "$REQ" ||
	die "pip install from $WHEELS failed"

"$VPY" - <<'PY' >&2 || die "the venv does not import its packages"
import numpy, peft, safetensors, tokenizers, torch, transformers
print("pyenv: torch", torch.__version__, "| transformers", transformers.__version__,
      "| peft", peft.__version__, "| tokenizers", tokenizers.__version__,
      "| safetensors", safetensors.__version__, "| numpy", numpy.__version__)
PY

echo "$want" >"$STAMP"
echo "$VPY"
