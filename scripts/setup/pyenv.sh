#!/usr/bin/env bash
# scripts/setup/pyenv.sh: the Python reference environment (docs/build.md).
#
#   scripts/setup/pyenv.sh              create or update the venv, print its python's path
#   scripts/setup/pyenv.sh --make-test  the same, but when the package index cannot be
#                                       reached: a loud SKIP, no path, exit 0 (make test)
#   "$(scripts/setup/pyenv.sh)" scripts/fixtures/make_fixtures.py
#
# The venv lives outside the clone, in ${MOSE_CACHE:-~/.cache/mose}/venv, and holds exactly
# the packages pinned in scripts/setup/requirements-ref.txt: the torch 2.11 wheel that
# scripts/setup/setup.sh already fetched for libtorch, the two CUDA runtime wheels that
# libtorch itself links, transformers, PEFT, tokenizers, safetensors, gguf, TensorBoard and
# their dependencies. Every file is downloaded once into ${MOSE_CACHE}/wheels (files already
# there are not fetched again) and installed from there with --no-deps, so pip never pulls
# torch's CUDA libraries (2.7 GB). torch then imports through link stubs for those
# libraries (scripts/setup/cuda_stubs.py): CPU only, as everything here needs.
#
# Idempotent: a venv whose stamp matches (the requirements file, the stub generator and
# the interpreter version) is left alone, so a second run downloads nothing and returns at
# once; a venv with another stamp is rebuilt. pyenv.sh only ever removes a venv it made
# (one holding its .mose-venv marker): any other directory at that path is refused by name.
#
# When the package index cannot be reached, the reason is written to ${MOSE_CACHE}/pyenv-skip.txt
# (removed by the next successful build); the Go tests that need the venv skip with it.
#
# Environment: MOSE_CACHE, MOSE_PYTHON (the interpreter to build the venv with: CPython
# 3.10-3.13, the one setup.sh's pip fetched the torch wheel for), CC (for the stubs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
VENV=$CACHE/venv
WHEELS=$CACHE/wheels
REQ=$ROOT/scripts/setup/requirements-ref.txt
STUBGEN=$ROOT/scripts/setup/cuda_stubs.py
OWNER=$VENV/.mose-venv           # written first: pyenv.sh made this directory
LEGACY_OWNER=$VENV/.mose-requirements.sha256 # the stamp of pyenv.sh's torch 2.1 venv
STAMP=$VENV/.mose-venv-stamp     # written last: what the venv was built from
SKIPFILE=$CACHE/pyenv-skip.txt
LOG=$CACHE/pip-venv.log

MAKE_TEST=0
case "${1:-}" in
--make-test) MAKE_TEST=1 ;;
"") ;;
*) echo "usage: scripts/setup/pyenv.sh [--make-test]" >&2; exit 2 ;;
esac

die() {
	echo "pyenv: error: $1" >&2
	shift
	for line in "$@"; do echo "pyenv:   $line" >&2; done
	exit 1
}
info() { echo "pyenv: $*" >&2; }

[[ -f $REQ ]] || die "$REQ not found"
[[ -f $STUBGEN ]] || die "$STUBGEN not found"

pick_python() {
	local cand
	for cand in ${MOSE_PYTHON:-} python3 python3.11 python3.12 python3.13 python3.10; do
		[[ -n $cand ]] || continue
		command -v "$cand" >/dev/null 2>&1 || continue
		if "$cand" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)' 2>/dev/null; then
			echo "$cand"
			return 0
		fi
	done
	return 1
}
PY=$(pick_python) || die "no CPython 3.10-3.13 found (the torch 2.11 wheels' Pythons)" \
	"fix: install python3.11 or point MOSE_PYTHON at one"
pyver=$("$PY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
want=$(cat "$REQ" "$STUBGEN" | sha256sum | cut -d' ' -f1)-py$pyver

if [[ -x $VENV/bin/python && -f $STAMP && $(cat "$STAMP") == "$want" ]]; then
	rm -f "$SKIPFILE"
	echo "$VENV/bin/python"
	exit 0
fi

# Rebuild from scratch, but remove only a venv this script made.
old=0
if [[ -e $VENV || -L $VENV ]]; then
	if [[ -L $VENV || ! -d $VENV || ! ( -f $OWNER || -f $LEGACY_OWNER ) ]]; then
		die "$VENV exists but was not made by scripts/setup/pyenv.sh (it has no .mose-venv marker): not touching it" \
			"fix: move it away (or set MOSE_CACHE to another cache dir), then rerun"
	fi
	old=1
fi

skip() {
	local why=$1
	echo "$why" >"$SKIPFILE"
	if [[ $MAKE_TEST == 1 ]]; then
		echo "=================================================================================" >&2
		echo "pyenv: SKIP: the Python reference venv was not built: $why." >&2
		if [[ -f $STAMP ]]; then
			echo "pyenv:   The tests use the older venv left at $VENV (built from other pins)." >&2
		else
			echo "pyenv:   The real-model (SmolLM2), PEFT, TensorBoard and converter tests will SKIP." >&2
		fi
		echo "pyenv:   Rerun make test (or make pyenv) where the index can be reached." >&2
		echo "=================================================================================" >&2
		exit 0
	fi
	die "$why" "the venv needs the pinned wheels once; rerun where the index can be reached"
}

newvenv() {
	rm -rf "$VENV"
	info "creating $VENV with $("$PY" --version 2>&1)"
	mkdir -p "$VENV"
	echo "made by scripts/setup/pyenv.sh: it may remove and rebuild this directory" >"$OWNER"
	"$PY" -m venv "$VENV" || die "$PY -m venv $VENV failed"
}

t0=$SECONDS
mkdir -p "$CACHE" "$WHEELS"
VPY=$VENV/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Download with the old venv's pip when it runs this Python (so that a failed download
# leaves it in place), else with the new venv's.
if [[ $old == 1 ]] && [[ $("$VPY" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) == "$pyver" ]] &&
	"$VPY" -m pip --version >/dev/null 2>&1; then
	info "updating $VENV (built from other pins, or not finished)"
else
	newvenv
	old=0
fi

# Fetch what the wheel folder lacks: offline when every pinned file is already there.
before=$(mktemp)
trap 'rm -f "$before"' EXIT
ls "$WHEELS" | sort >"$before"
if ! "$VPY" -m pip download --quiet --no-index --no-deps --only-binary=:all: --find-links "$WHEELS" -d "$WHEELS" -r "$REQ" >/dev/null 2>&1; then
	info "fetching the pinned wheels into $WHEELS (log: $LOG)"
	if ! "$VPY" -m pip download --no-deps --only-binary=:all: --find-links "$WHEELS" -d "$WHEELS" -r "$REQ" >"$LOG" 2>&1; then
		if why=$("$PY" "$ROOT/scripts/setup/index_probe.py"); then
			skip "$why"
		fi
		tail -5 "$LOG" >&2
		die "pip download failed although the index answers (log: $LOG)" \
			"check that $REQ pins versions that exist for Python $pyver"
	fi
fi
fetched=$(comm -13 "$before" <(ls "$WHEELS" | sort))
nfetched=$(printf '%s' "$fetched" | grep -c . || true)
bytes=0
if [[ -n $fetched ]]; then
	bytes=$(cd "$WHEELS" && printf '%s\n' "$fetched" | tr '\n' '\0' | du -cb --files0-from=- | tail -1 | cut -f1)
fi
tfetch=$((SECONDS - t0))

[[ $old == 0 ]] || newvenv
info "installing into $VENV"
"$VPY" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" -r "$REQ" ||
	die "pip install from $WHEELS failed"

site=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
search=()
for d in "$site"/nvidia/*/lib "$site"/nvidia/*/*/lib; do
	[[ -d $d ]] && search+=(--search "$d")
done
"$VPY" "$STUBGEN" "$site/torch/lib" "${search[@]}" || die "could not make the CUDA link stubs (scripts/setup/cuda_stubs.py)"

# Only torch's CUDA packages and triton may be missing; anything else is a wrong pin.
if bad=$("$VPY" -m pip check 2>&1 | grep -v -E '^torch [^ ]+ requires (nvidia-|cuda-|triton)'); then
	[[ -z $bad || $bad == "No broken requirements found." ]] || die "pip check: the pins do not fit together:" "$bad"
fi

OMP_NUM_THREADS=1 "$VPY" - <<'PY' >&2 || die "the venv does not import its packages"
import accelerate, gguf, numpy, peft, safetensors, tensorboard, tokenizers, torch, torchao, transformers
assert not torch.cuda.is_available(), "torch.cuda.is_available() with link stubs"
x = torch.arange(6, dtype=torch.float32).reshape(2, 3)
assert torch.equal(x @ x.T, torch.tensor([[5.0, 14.0], [14.0, 50.0]])), "CPU matmul"
print("pyenv: torch", torch.__version__, "(CPU) | transformers", transformers.__version__,
      "| peft", peft.__version__, "| tokenizers", tokenizers.__version__,
      "| safetensors", safetensors.__version__, "| numpy", numpy.__version__)
PY

echo "$want" >"$STAMP"
rm -f "$SKIPFILE"
info "built in $((SECONDS - t0)) s (fetch $tfetch s: $nfetched files, $((bytes / 1000000)) MB downloaded); $(du -sh "$VENV" | cut -f1) on disk"
echo "$VPY"
