#!/usr/bin/env bash
# scripts/setup.sh: prepare libtorch 2.1 and gotch v0.9.1's libtch for this checkout.
#
#   make setup                      CPU, libtorch from the PyPI torch 2.1 wheel (cached)
#   LIBTORCH=/opt/libtorch make setup  an existing libtorch 2.1 (official zip or pip torch dir)
#
# What it does, idempotently (a second run downloads nothing):
#   1. finds libtorch: $LIBTORCH, or the torch==2.1.{0,2,1} wheel from PyPI, unpacked
#      once (torch/lib + torch/include only) under ${MOSE_CACHE:-~/.cache/mose};
#   2. checks the version (from torch/version.h), detects the C++ ABI (from libc10.so)
#      and CUDA (libtorch_cuda.so);
#   3. copies gotch's libtch out of the Go module cache into the cache, with a lib.go
#      whose cgo flags fit that libtorch (only build flags differ from upstream);
#   4. writes a git-ignored go.work that replaces gotch with that copy;
#   5. builds and runs scripts/smoke (matmul + backward) to prove the toolchain.
#
# The gotch copy lives outside the clone on purpose: its path is part of Go's build
# cache key, so a stable path lets every clone reuse the compiled libtch (minutes of
# C++ otherwise).
#
# Environment: LIBTORCH, MOSE_CACHE, MOSE_DEVICE=cpu (ignore CUDA even if present),
# MOSE_CXX11_ABI=0|1 (override ABI detection), MOSE_TORCH_VERSIONS (wheel versions to try).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
GOTCH_MODULE=github.com/sugarme/gotch
GOTCH_VERSION=v0.9.1
read -r -a TORCH_VERSIONS <<<"${MOSE_TORCH_VERSIONS:-2.1.0 2.1.2 2.1.1}"

# die prints one line: the problem, then what to do about it.
die() {
	local msg="setup: error: $1"
	shift
	for part in "$@"; do msg="$msg; $part"; done
	echo "$msg" >&2
	exit 1
}
info() { echo "setup: $*" >&2; }

command -v go >/dev/null || die "go not found on PATH" "fix: install Go 1.24 or newer"
command -v g++ >/dev/null || die "g++ not found on PATH" "fix: apt-get install g++ (gotch compiles a C++ wrapper)"
mkdir -p "$CACHE"

# ---------------------------------------------------------------- 1. libtorch
# unpack_wheel WHEEL DEST: torch/lib (CPU libraries only) and torch/include, atomically.
unpack_wheel() {
	local wheel=$1 dest=$2 tmp
	tmp=$(mktemp -d "$CACHE/.unpack.XXXXXX")
	info "unpacking $(basename "$wheel") (torch/lib, torch/include) into $dest"
	# libtorch_cuda*, libtorch_python and nvfuser are not needed for a CPU build.
	unzip -q "$wheel" 'torch/include/*' 'torch/lib/*' \
		-x 'torch/lib/libtorch_cuda*' 'torch/lib/libtorch_python.so' \
		'torch/lib/libnvfuser_codegen.so' 'torch/lib/libcaffe2_nvrtc.so' 'torch/lib/libc10_cuda.so' \
		-d "$tmp"
	mv "$tmp/torch/lib" "$tmp/lib"
	mv "$tmp/torch/include" "$tmp/include"
	rmdir "$tmp/torch"
	echo "$wheel" >"$tmp/SOURCE"
	echo "$3" >"$tmp/build-version"
	rm -rf "$dest"
	mv "$tmp" "$dest"
}

# nvidia_runtime WHEEL DEST: the PyPI torch wheel's libtorch_cpu.so lists libcudart.so.12
# and libcupti.so.12 as NEEDED even on a CPU-only machine; they load fine without a GPU.
# Fetch the exact pins from the wheel's metadata and drop the .so files next to libtorch.
nvidia_runtime() {
	local wheel=$1 dest=$2 pkg pin nvwheel so
	for pkg in nvidia-cuda-runtime-cu12 nvidia-cuda-cupti-cu12; do
		pin=$(unzip -p "$wheel" '*.dist-info/METADATA' | sed -n "s/^Requires-Dist: $pkg (==\([^)]*\)).*/\1/p" | head -1)
		[ -n "$pin" ] || die "$(basename "$wheel") does not pin $pkg" "fix: use LIBTORCH=/path/to/libtorch-2.1 instead"
		nvwheel=$(ls "$CACHE/wheels/${pkg//-/_}-$pin-"*.whl 2>/dev/null | head -1 || true)
		if [ -z "$nvwheel" ]; then
			info "downloading $pkg==$pin (runtime library libtorch_cpu.so links against)"
			pip download --no-deps --only-binary=:all: --platform manylinux1_x86_64 \
				"$pkg==$pin" -d "$CACHE/wheels" >"$CACHE/pip-$pkg.log" 2>&1 ||
				die "pip could not download $pkg==$pin: $(tail -1 "$CACHE/pip-$pkg.log")" \
					"fix: check network/PIP_INDEX_URL, or set LIBTORCH=/path/to/libtorch-2.1"
			nvwheel=$(ls "$CACHE/wheels/${pkg//-/_}-$pin-"*.whl | head -1)
		fi
		for so in $(unzip -Z1 "$nvwheel" | grep -E 'lib/lib(cudart|cupti)\.so\.[0-9]+$'); do
			unzip -q -o -j "$nvwheel" "$so" -d "$dest/lib"
		done
	done
}

fetch_wheel() {
	local v log
	mkdir -p "$CACHE/wheels"
	for v in "${TORCH_VERSIONS[@]}"; do
		WHEEL=$(ls "$CACHE/wheels/torch-$v-"*.whl 2>/dev/null | head -1 || true)
		if [ -n "$WHEEL" ]; then TORCH_VERSION=$v; return; fi
	done
	for v in "${TORCH_VERSIONS[@]}"; do
		log="$CACHE/pip-torch-$v.log"
		info "downloading torch==$v from PyPI (about 670 MB, once) into $CACHE/wheels"
		if pip download --no-deps --only-binary=:all: "torch==$v" -d "$CACHE/wheels" >"$log" 2>&1; then
			WHEEL=$(ls "$CACHE/wheels/torch-$v-"*.whl | head -1)
			TORCH_VERSION=$v
			return
		fi
		info "pip refused torch==$v: $(tail -1 "$log")"
	done
	die "pip could not download any of torch==${TORCH_VERSIONS[*]} (last output in $log):" \
		"$(tail -3 "$log" | tr '\n' ' ')" \
		"fix: check network/PIP_INDEX_URL, or download libtorch 2.1 yourself and set LIBTORCH=/path/to/libtorch"
}

if [ -n "${LIBTORCH:-}" ]; then
	[ -d "$LIBTORCH" ] || die "LIBTORCH=$LIBTORCH is not a directory" \
		"fix: point LIBTORCH at a libtorch 2.1 folder (with lib/ and include/), or unset it to use the cached CPU wheel"
	T=$(cd "$LIBTORCH" && pwd)
	# Accept site-packages as well as site-packages/torch.
	[ -f "$T/lib/libc10.so" ] || { [ -f "$T/torch/lib/libc10.so" ] && T="$T/torch"; }
	[ -f "$T/lib/libc10.so" ] && [ -f "$T/lib/libtorch_cpu.so" ] ||
		die "LIBTORCH=$LIBTORCH has no lib/libc10.so and lib/libtorch_cpu.so" \
			"fix: point LIBTORCH at the folder holding lib/ and include/ (the unzipped official libtorch, or .../site-packages/torch)"
	SOURCE="LIBTORCH=$LIBTORCH"
else
	T=""
	for v in "${TORCH_VERSIONS[@]}"; do
		if [ -f "$CACHE/libtorch-$v-pip/lib/libtorch_cpu.so" ] && ls "$CACHE/libtorch-$v-pip/lib/"libcudart.so.* >/dev/null 2>&1; then
			T="$CACHE/libtorch-$v-pip"
			break
		fi
	done
	if [ -z "$T" ]; then
		command -v pip >/dev/null || die "pip not found, so the torch 2.1 wheel cannot be fetched" \
			"fix: install pip (python3-pip), or set LIBTORCH=/path/to/libtorch-2.1"
		command -v unzip >/dev/null || die "unzip not found" "fix: apt-get install unzip"
		fetch_wheel
		T="$CACHE/libtorch-$TORCH_VERSION-pip"
		unpack_wheel "$WHEEL" "$T" "$TORCH_VERSION"
		nvidia_runtime "$WHEEL" "$T"
	fi
	SOURCE="PyPI wheel ($(cat "$T/SOURCE" 2>/dev/null | xargs -r basename))"
fi

# ---------------------------------------------------------------- 2. version, ABI, CUDA
VERSION_H="$T/include/torch/csrc/api/include/torch/version.h"
[ -f "$VERSION_H" ] || die "$T has no include/torch/csrc/api/include/torch/version.h (headers missing)" \
	"fix: use a libtorch that ships its headers (the official libtorch zip or a pip torch folder)"
major=$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' "$VERSION_H")
minor=$(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\).*/\1/p' "$VERSION_H")
patch=$(sed -n 's/^#define TORCH_VERSION_PATCH \([0-9]*\).*/\1/p' "$VERSION_H")
VERSION="$major.$minor.$patch"
[ "$major.$minor" = "2.1" ] || die "$T holds libtorch $VERSION, but gotch $GOTCH_VERSION binds libtorch 2.1" \
	"fix: point LIBTORCH at a libtorch 2.1.x folder, or unset LIBTORCH to use the cached CPU wheel"

SYM_OLD='_ZN3c105ErrorC2ENS_14SourceLocationESs'
SYM_NEW='_ZN3c105ErrorC2ENS_14SourceLocationENSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE'
if [ -n "${MOSE_CXX11_ABI:-}" ]; then
	ABI=$MOSE_CXX11_ABI
else
	syms=$(nm -D --defined-only "$T/lib/libc10.so" 2>/dev/null | awk '{print $3}' | grep -E "^($SYM_OLD|$SYM_NEW)\$" || true)
	case "$syms" in
	*"$SYM_NEW"*) ABI=1 ;;
	*"$SYM_OLD"*) ABI=0 ;;
	*) die "cannot tell the C++ ABI of $T/lib/libc10.so (neither $SYM_OLD nor its cxx11 twin is exported)" \
		"fix: set MOSE_CXX11_ABI=1 (official cxx11-abi zip) or MOSE_CXX11_ABI=0 (pip wheel)" ;;
	esac
fi

MODE=cpu
if [ "${MOSE_DEVICE:-}" != cpu ] && [ -f "$T/lib/libtorch_cuda.so" ]; then MODE=cuda; fi

# ---------------------------------------------------------------- 3. libtch copy
SRC=$(go mod download -json "$GOTCH_MODULE@$GOTCH_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$SRC/libtch" ] || die "go could not fetch $GOTCH_MODULE@$GOTCH_VERSION" "fix: check GOPROXY / network"

libgo() {
	cat <<EOF
package libtch

// Generated by mose's scripts/setup.sh; replaces upstream's CUDA-only lib.go.
// libtorch $VERSION ($MODE, _GLIBCXX_USE_CXX11_ABI=$ABI) at $T.
// Only build flags differ from gotch $GOTCH_VERSION.

// #cgo CFLAGS: -I\${SRCDIR} -O2 -Wno-deprecated-declarations
// #cgo CXXFLAGS: -std=c++17 -I\${SRCDIR} -O1 -g0 -D_GLIBCXX_USE_CXX11_ABI=$ABI
// #cgo CXXFLAGS: -I$T/include -I$T/include/torch/csrc/api/include
// #cgo CXXFLAGS: -Wno-deprecated-declarations -Wno-unused-variable -Wno-sign-compare
EOF
	if [ "$MODE" = cuda ]; then
		# Without --no-as-needed the linker drops libtorch_cuda (nothing references it
		# directly) and CUDA reports unavailable at run time.
		echo "// #cgo LDFLAGS: -L$T/lib -Wl,-rpath,$T/lib -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -ltorch_cpu -lc10 -lstdc++"
	else
		echo "// #cgo LDFLAGS: -L$T/lib -Wl,-rpath,$T/lib -ltorch_cpu -lc10 -lstdc++"
	fi
	echo 'import "C"'
}

KEY=$( (libgo; echo "$SRC") | sha256sum | cut -c1-12)
G="$CACHE/gotch/$GOTCH_VERSION-$MODE-$KEY"
if [ ! -f "$G/.complete" ]; then
	info "preparing gotch $GOTCH_VERSION libtch for $MODE in $G"
	tmp=$(mktemp -d "$CACHE/.gotch.XXXXXX")
	cp "$SRC/go.mod" "$SRC/LICENSE" "$tmp/"
	[ -f "$SRC/go.sum" ] && cp "$SRC/go.sum" "$tmp/"
	cp -r "$SRC/libtch" "$tmp/libtch"
	chmod -R u+w "$tmp"
	libgo >"$tmp/libtch/lib.go"
	touch "$tmp/.complete"
	mkdir -p "$CACHE/gotch"
	rm -rf "$G"
	mv "$tmp" "$G"
fi

# ---------------------------------------------------------------- 4. go.work
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$ROOT/go.mod")
work=$(printf 'go %s\n\nuse .\n\n// Generated by scripts/setup.sh (%s); do not commit.\nreplace %s %s => %s\n' \
	"$gover" "$MODE" "$GOTCH_MODULE" "$GOTCH_VERSION" "$G")
if [ "$(cat "$ROOT/go.work" 2>/dev/null)" != "$work" ]; then
	printf '%s\n' "$work" >"$ROOT/go.work"
fi
# mose's own small C++ shims (internal/torch/*.cpp) find libtorch's headers and
# the ABI through these two generated paths, so their committed cgo flags stay static.
mkdir -p "$ROOT/.build/include"
ln -sfn "$T" "$ROOT/.build/libtorch"
abi_h=$(printf '// Generated by scripts/setup.sh: the C++ ABI of %s.\n#define _GLIBCXX_USE_CXX11_ABI %s\n' "$T" "$ABI")
[ "$(cat "$ROOT/.build/include/mose_abi.h" 2>/dev/null)" = "$abi_h" ] || printf '%s\n' "$abi_h" >"$ROOT/.build/include/mose_abi.h"
cat >"$ROOT/.build/setup.env" <<EOF
LIBTORCH=$T
TORCH_VERSION=$VERSION
MOSE_MODE=$MODE
CXX11_ABI=$ABI
GOTCH=$G
EOF

# gloo's headers for the c10d shim (internal/dist): fetched once into the cache.
"$ROOT/scripts/setup_gloo.sh" "$ROOT" "$CACHE"

# ---------------------------------------------------------------- 5. smoke test
log="$ROOT/.build/smoke-build.log"
start=$(date +%s)
if ! (cd "$ROOT" && go build -o .build/smoke ./scripts/smoke) >"$log" 2>&1; then
	undef=$(grep -o "undefined reference to \`[^']*'" "$log" | head -1 || true)
	if [ -n "$undef" ]; then
		case "$undef" in
		*__cxx11*) hint="the code was built with _GLIBCXX_USE_CXX11_ABI=$ABI but this libtorch wants the old ABI: set MOSE_CXX11_ABI=0" ;;
		*) hint="if the symbol mentions std::string, the C++ ABI does not match: try MOSE_CXX11_ABI=$((1 - ABI))" ;;
		esac
		die "linking libtch against $T failed: $undef" "fix: $hint" "full log: $log"
	fi
	die "building the libtorch smoke test failed (libtorch $VERSION, $MODE, ABI=$ABI); last lines of $log:" \
		"$(tail -5 "$log" | tr '\n' ' ')"
fi
built=$(($(date +%s) - start))
out=$("$ROOT/.build/smoke" 2>&1) || die "the libtorch smoke test failed to run: $out" \
	"fix: check that $T/lib holds every library libtorch_cpu.so needs (ldd $T/lib/libtorch_cpu.so)"
info "$out"
info "ready: libtorch $VERSION ($MODE, cxx11 ABI=$ABI) from $SOURCE; build ${built}s"
