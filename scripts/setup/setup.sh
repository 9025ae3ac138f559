#!/usr/bin/env bash
# scripts/setup/setup.sh: prepare libtorch (2.1.x or 2.11.x) and gotch v0.9.1's libtch for this checkout.
#
#   make setup                         CPU, libtorch from the PyPI torch wheel of the default line (cached)
#   MOSE_TORCH=2.11 make setup         CPU, the other line's wheel (each line has its own cache dir)
#   LIBTORCH=/opt/libtorch make setup  an existing libtorch 2.1.x or 2.11.x (official zip or pip torch dir)
#
# What it does, idempotently (a second run downloads nothing):
#   1. finds libtorch: $LIBTORCH, or the torch wheel of the line MOSE_TORCH selects
#      (2.1: torch==2.1.{0,2,1}; 2.11: torch==2.11.0) from PyPI, unpacked once
#      (torch/lib + torch/include only) under ${MOSE_CACHE:-~/.cache/mose}/libtorch-<version>-pip,
#      with the two small CUDA runtime libraries (libcudart, libcupti) its
#      libtorch_cpu.so names, from the NVIDIA wheels its metadata pins;
#   2. checks the version (torch/version.h, or torch/headeronly/version.h since 2.11),
#      detects the C++ ABI (from libc10.so) and CUDA (libtorch_cuda.so);
#   3. copies gotch's libtch out of the Go module cache into the cache, with a lib.go
#      whose cgo flags fit that libtorch, and with the generated wrappers listed in
#      DISABLED_WRAPPERS for that line turned into errors (they do not compile
#      against it; mose calls none of them). Nothing else differs from upstream;
#   4. writes a git-ignored go.work that replaces gotch with that copy, and points
#      .build/ (libtorch link, mose_abi.h, setup.env) at the chosen libtorch;
#   5. builds and runs cmd/smoke (matmul + backward) to prove the toolchain.
#
# The gotch copy lives outside the clone on purpose: its path is part of Go's build
# cache key, so a stable path lets every clone reuse the compiled libtch (minutes of
# C++ otherwise).
#
# Environment: LIBTORCH, MOSE_CACHE, MOSE_TORCH=2.1|2.11 (the wheel line when LIBTORCH is
# unset; default below), MOSE_DEVICE=cpu (ignore CUDA even if present) or cuda (require
# it; with the wheel, unpack its CUDA libraries too), MOSE_CXX11_ABI=0|1 (override ABI
# detection), MOSE_TORCH_VERSIONS (wheel versions to try), MOSE_LINK_ONLY=1 (link for
# another machine: allow the NVIDIA libraries libtorch_cuda.so needs to be absent here,
# and build the smoke test without running it; used by scripts/gpu-kit/build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=${MOSE_CACHE:-$HOME/.cache/mose}
GOTCH_MODULE=github.com/sugarme/gotch
GOTCH_VERSION=v0.9.1
# The default CPU line, chosen by measurement (README: "libtorch lines": 2.11 was
# 0.62-0.72x the time of 2.1 on the single-thread forward and MoSE step benchmarks).
DEFAULT_LINE=2.11
LINE=${MOSE_TORCH:-$DEFAULT_LINE}
case "$LINE" in
2.1) line_versions="2.1.0 2.1.2 2.1.1" ;;
2.11) line_versions="2.11.0" ;;
*) echo "setup: error: MOSE_TORCH=$LINE; fix: use MOSE_TORCH=2.1 or MOSE_TORCH=2.11" >&2; exit 1 ;;
esac
read -r -a TORCH_VERSIONS <<<"${MOSE_TORCH_VERSIONS:-$line_versions}"
WANT_CUDA_LIBS=0
[ "${MOSE_DEVICE:-}" = cuda ] && WANT_CUDA_LIBS=1

# DISABLED_WRAPPERS: per libtorch line (major.minor), the generated libtch wrappers
# (torch_api_generated.cpp.h) whose ATen signatures changed, so that they do not
# compile against that line. Their body becomes an error (gotch's last error:
# "<name>: disabled by mose setup for libtorch <line>"); mose calls none of them.
disabled_wrappers() {
	case "$1" in
	2.1) echo "" ;;
	2.11) echo "atg__cslt_sparse_mm atg__scaled_mm atg__scaled_mm_out" ;;
	esac
}

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
	# libtorch_python and nvfuser are never needed; libtorch_cuda* and libc10_cuda
	# only for a CUDA build (MOSE_DEVICE=cuda).
	local skip=('torch/lib/libtorch_python.so' 'torch/lib/libnvfuser_codegen.so' 'torch/lib/libshm*')
	if [ "$WANT_CUDA_LIBS" = 0 ]; then
		skip+=('torch/lib/libtorch_cuda*' 'torch/lib/libcaffe2_nvrtc.so' 'torch/lib/libc10_cuda.so' 'torch/lib/libtorch_nvshmem.so')
	fi
	# Exclude only what this wheel has (unzip warns about unmatched patterns).
	local have=() pat
	for pat in "${skip[@]}"; do
		unzip -Z1 "$wheel" "$pat" >/dev/null 2>&1 && have+=("$pat")
	done
	unzip -q "$wheel" 'torch/include/*' 'torch/lib/*' ${have[@]+-x "${have[@]}"} -d "$tmp"
	mv "$tmp/torch/lib" "$tmp/lib"
	mv "$tmp/torch/include" "$tmp/include"
	rmdir "$tmp/torch"
	echo "$wheel" >"$tmp/SOURCE"
	echo "$3" >"$tmp/build-version"
	rm -rf "$dest"
	mv "$tmp" "$dest"
}

# nvidia_pins WHEEL: "package spec" lines for the CUDA runtime and CUPTI wheels that
# the torch wheel's libtorch_cpu.so needs (it lists libcudart.so.N and libcupti.so.N
# as NEEDED even on a CPU-only machine; they load fine without a GPU). torch 2.1 pins
# nvidia-cuda-runtime-cu12 / nvidia-cuda-cupti-cu12 directly; torch 2.11 pins the
# meta package cuda-toolkit[cudart,cupti,...]==13.0.2, whose own metadata pins
# nvidia-cuda-runtime==13.0.96.* and nvidia-cuda-cupti==13.0.85.* (no -cu13 suffix).
nvidia_pins() {
	local wheel=$1 meta pin pkg ct ctwheel ctmeta
	meta=$(unzip -p "$wheel" '*.dist-info/METADATA')
	for pkg in nvidia-cuda-runtime-cu12 nvidia-cuda-cupti-cu12; do
		pin=$(echo "$meta" | sed -n "s/^Requires-Dist: $pkg (==\([^)]*\)).*/\1/p;s/^Requires-Dist: $pkg==\([^ ;]*\).*/\1/p" | head -1)
		[ -n "$pin" ] && echo "$pkg $pin"
	done
	ct=$(echo "$meta" | sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([^ ;]*\).*/\1/p' | head -1)
	[ -n "$ct" ] || return 0
	ctwheel=$(ls "$CACHE/wheels/cuda_toolkit-$ct-"*.whl 2>/dev/null | head -1 || true)
	if [ -z "$ctwheel" ]; then
		info "downloading cuda-toolkit==$ct (metadata only: which CUDA runtime wheels torch pins)"
		pip download --no-deps --only-binary=:all: "cuda-toolkit==$ct" -d "$CACHE/wheels" >"$CACHE/pip-cuda-toolkit.log" 2>&1 ||
			die "pip could not download cuda-toolkit==$ct: $(tail -1 "$CACHE/pip-cuda-toolkit.log")" \
				"fix: check network/PIP_INDEX_URL, or set LIBTORCH=/path/to/libtorch"
		ctwheel=$(ls "$CACHE/wheels/cuda_toolkit-$ct-"*.whl | head -1)
	fi
	ctmeta=$(unzip -p "$ctwheel" '*.dist-info/METADATA')
	for pkg in nvidia-cuda-runtime nvidia-cuda-cupti; do
		pin=$(echo "$ctmeta" | sed -n "s/^Requires-Dist: $pkg==\([^ ;]*\);.*extra == .\(cudart\|cupti\|all\).*/\1/p" | head -1)
		[ -n "$pin" ] && echo "$pkg $pin"
	done
	return 0
}

# nvidia_runtime WHEEL DEST: fetch the pinned CUDA runtime / CUPTI wheels (cached) and
# drop their libcudart.so.N and libcupti.so.N next to libtorch.
nvidia_runtime() {
	local wheel=$1 dest=$2 pkg pin nvwheel so pins n=0
	pins=$(nvidia_pins "$wheel")
	while read -r pkg pin; do
		[ -n "$pkg" ] || continue
		n=$((n + 1))
		nvwheel=$(ls "$CACHE/wheels/${pkg//-/_}-${pin%.\*}"*.whl 2>/dev/null | head -1 || true)
		if [ -z "$nvwheel" ]; then
			info "downloading $pkg==$pin (runtime library libtorch_cpu.so links against)"
			pip download --no-deps --only-binary=:all: "$pkg==$pin" -d "$CACHE/wheels" >"$CACHE/pip-$pkg.log" 2>&1 ||
				die "pip could not download $pkg==$pin: $(tail -1 "$CACHE/pip-$pkg.log")" \
					"fix: check network/PIP_INDEX_URL, or set LIBTORCH=/path/to/libtorch"
			nvwheel=$(ls "$CACHE/wheels/${pkg//-/_}-${pin%.\*}"*.whl | head -1)
		fi
		for so in $(unzip -Z1 "$nvwheel" | grep -E 'lib/lib(cudart|cupti)\.so\.[0-9]+$'); do
			unzip -q -o -j "$nvwheel" "$so" -d "$dest/lib"
		done
	done <<<"$pins"
	[ "$n" = 2 ] || die "$(basename "$wheel") pins neither nvidia-cuda-runtime/-cupti (cu12) nor cuda-toolkit[cudart,cupti]" \
		"fix: use LIBTORCH=/path/to/libtorch instead"
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
		info "downloading torch==$v from PyPI (530-670 MB, once) into $CACHE/wheels"
		if pip download --no-deps --only-binary=:all: "torch==$v" -d "$CACHE/wheels" >"$log" 2>&1; then
			WHEEL=$(ls "$CACHE/wheels/torch-$v-"*.whl | head -1)
			TORCH_VERSION=$v
			return
		fi
		info "pip refused torch==$v: $(tail -1 "$log")"
	done
	die "pip could not download any of torch==${TORCH_VERSIONS[*]} (last output in $log):" \
		"$(tail -3 "$log" | tr '\n' ' ')" \
		"fix: check network/PIP_INDEX_URL, or download libtorch $LINE yourself and set LIBTORCH=/path/to/libtorch"
}

if [ -n "${LIBTORCH:-}" ]; then
	[ -d "$LIBTORCH" ] || die "LIBTORCH=$LIBTORCH is not a directory" \
		"fix: point LIBTORCH at a libtorch 2.1.x or 2.11.x folder (with lib/ and include/), or unset it to use the cached CPU wheel"
	T=$(cd "$LIBTORCH" && pwd)
	# Accept site-packages as well as site-packages/torch.
	[ -f "$T/lib/libc10.so" ] || { [ -f "$T/torch/lib/libc10.so" ] && T="$T/torch"; }
	[ -f "$T/lib/libc10.so" ] && [ -f "$T/lib/libtorch_cpu.so" ] ||
		die "LIBTORCH=$LIBTORCH has no lib/libc10.so and lib/libtorch_cpu.so" \
			"fix: point LIBTORCH at the folder holding lib/ and include/ (the unzipped official libtorch, or .../site-packages/torch)"
	SOURCE="LIBTORCH=$LIBTORCH"
else
	T=""
	suffix=pip
	[ "$WANT_CUDA_LIBS" = 1 ] && suffix=pip-cuda
	for v in "${TORCH_VERSIONS[@]}"; do
		if [ -f "$CACHE/libtorch-$v-$suffix/lib/libtorch_cpu.so" ] && ls "$CACHE/libtorch-$v-$suffix/lib/"libcudart.so.* >/dev/null 2>&1; then
			T="$CACHE/libtorch-$v-$suffix"
			break
		fi
	done
	if [ -z "$T" ]; then
		command -v pip >/dev/null || die "pip not found, so the torch $LINE wheel cannot be fetched" \
			"fix: install pip (python3-pip), or set LIBTORCH=/path/to/libtorch"
		command -v unzip >/dev/null || die "unzip not found" "fix: apt-get install unzip"
		fetch_wheel
		T="$CACHE/libtorch-$TORCH_VERSION-$suffix"
		unpack_wheel "$WHEEL" "$T" "$TORCH_VERSION"
		nvidia_runtime "$WHEEL" "$T"
	fi
	SOURCE="PyPI wheel ($(cat "$T/SOURCE" 2>/dev/null | xargs -r basename))"
fi

# ---------------------------------------------------------------- 2. version, ABI, CUDA
# 2.1 keeps the version macros in torch/version.h; 2.11 moved them to
# torch/headeronly/version.h (the old file includes it).
VERSION_H=""
for h in "$T/include/torch/headeronly/version.h" "$T/include/torch/csrc/api/include/torch/version.h"; do
	if [ -f "$h" ] && grep -q '^#define TORCH_VERSION_MAJOR' "$h"; then VERSION_H=$h; break; fi
done
[ -n "$VERSION_H" ] || die "$T has no torch/headeronly/version.h or include/torch/csrc/api/include/torch/version.h defining TORCH_VERSION_MAJOR (headers missing)" \
	"fix: use a libtorch that ships its headers (the official libtorch zip or a pip torch folder)"
major=$(sed -n 's/^#define TORCH_VERSION_MAJOR \([0-9]*\).*/\1/p' "$VERSION_H")
minor=$(sed -n 's/^#define TORCH_VERSION_MINOR \([0-9]*\).*/\1/p' "$VERSION_H")
patch=$(sed -n 's/^#define TORCH_VERSION_PATCH \([0-9]*\).*/\1/p' "$VERSION_H")
VERSION="$major.$minor.$patch"
case "$major.$minor" in
2.1 | 2.11) ;;
*) die "$T holds libtorch $VERSION, but mose supports the libtorch lines 2.1.x and 2.11.x (gotch $GOTCH_VERSION)" \
	"fix: point LIBTORCH at a libtorch 2.1.x or 2.11.x folder, or unset LIBTORCH to use the cached CPU wheel" ;;
esac
if [ -z "${LIBTORCH:-}" ] && [ "$major.$minor" != "$LINE" ]; then
	die "MOSE_TORCH=$LINE but the cached wheel in $T is libtorch $VERSION" "fix: MOSE_TORCH_VERSIONS must list $LINE.x versions"
fi
DISABLED=$(disabled_wrappers "$major.$minor")

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
[ "${MOSE_DEVICE:-}" = cuda ] && [ "$MODE" != cuda ] && die "MOSE_DEVICE=cuda but $T/lib has no libtorch_cuda.so" \
	"fix: point LIBTORCH at a CUDA libtorch, or unset MOSE_DEVICE"
LINK_ONLY=${MOSE_LINK_ONLY:-0}

# ---------------------------------------------------------------- 3. libtch copy
SRC=$(go mod download -json "$GOTCH_MODULE@$GOTCH_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$SRC/libtch" ] || die "go could not fetch $GOTCH_MODULE@$GOTCH_VERSION" "fix: check GOPROXY / network"

# libgo prints the lib.go of the gotch copy. Its text is part of the copy's cache key
# (KEY below), so its first comment keeps this script's old path (scripts/setup.sh,
# before scripts/ had subfolders) on purpose: a new path would make every cache
# recompile libtch (minutes of C++) for a comment.
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
		# MOSE_LINK_ONLY: the NVIDIA libraries libtorch_cuda.so needs live on the target
		# machine only (its own rpaths find them there).
		local undef=""
		[ "$LINK_ONLY" = 1 ] && undef=" -Wl,--allow-shlib-undefined"
		echo "// #cgo LDFLAGS: -L$T/lib -Wl,-rpath,$T/lib$undef -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed -ltorch_cpu -lc10 -lstdc++"
	else
		echo "// #cgo LDFLAGS: -L$T/lib -Wl,-rpath,$T/lib -ltorch_cpu -lc10 -lstdc++"
	fi
	echo 'import "C"'
}

# disable_wrappers FILE NAME...: replace each named wrapper's body (from its
# signature line to the closing brace in column 0) with an error, in place.
disable_wrappers() {
	local file=$1 name
	shift
	for name in "$@"; do
		grep -q "^void $name(" "$file" || die "gotch's $(basename "$file") has no wrapper $name to disable" \
			"fix: the DISABLED_WRAPPERS list in scripts/setup/setup.sh does not match gotch $GOTCH_VERSION"
		awk -v name="$name" -v line="$major.$minor" '
			skip && /^}$/ { skip = 0; print "  torch_last_err = strdup(\"" name ": disabled by mose setup for libtorch " line " (its ATen signature changed; mose does not use it)\");"; print; next }
			skip { next }
			index($0, "void " name "(") == 1 { print; skip = 1; next }
			{ print }' "$file" >"$file.tmp"
		mv "$file.tmp" "$file"
	done
}

# The key covers the flags, the gotch source and the disabled list (left out when
# empty, so that the 2.1 copies made before the list existed stay valid).
KEY=$( (libgo; echo "$SRC"; [ -z "$DISABLED" ] || echo "disabled: $DISABLED") | sha256sum | cut -c1-12)
G="$CACHE/gotch/$GOTCH_VERSION-$MODE-$KEY"
if [ -n "$DISABLED" ]; then
	info "libtorch $major.$minor: disabling gotch wrappers that do not compile against it: $DISABLED"
fi
if [ ! -f "$G/.complete" ]; then
	info "preparing gotch $GOTCH_VERSION libtch for $MODE in $G"
	tmp=$(mktemp -d "$CACHE/.gotch.XXXXXX")
	cp "$SRC/go.mod" "$SRC/LICENSE" "$tmp/"
	[ -f "$SRC/go.sum" ] && cp "$SRC/go.sum" "$tmp/"
	cp -r "$SRC/libtch" "$tmp/libtch"
	chmod -R u+w "$tmp"
	libgo >"$tmp/libtch/lib.go"
	# shellcheck disable=SC2086 # a space-separated list
	[ -z "$DISABLED" ] || disable_wrappers "$tmp/libtch/torch_api_generated.cpp.h" $DISABLED
	touch "$tmp/.complete"
	mkdir -p "$CACHE/gotch"
	rm -rf "$G"
	mv "$tmp" "$G"
fi

# ---------------------------------------------------------------- 4. go.work
gover=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$ROOT/go.mod")
work=$(printf 'go %s\n\nuse .\n\n// Generated by scripts/setup/setup.sh (%s); do not commit.\nreplace %s %s => %s\n' \
	"$gover" "$MODE" "$GOTCH_MODULE" "$GOTCH_VERSION" "$G")
if [ "$(cat "$ROOT/go.work" 2>/dev/null)" != "$work" ]; then
	printf '%s\n' "$work" >"$ROOT/go.work"
fi
# mose's own small C++ shims (internal/torch/*.cpp) find libtorch's headers and
# the ABI through these two generated paths, so their committed cgo flags stay static.
mkdir -p "$ROOT/.build/include"
ln -sfn "$T" "$ROOT/.build/libtorch"
abi_h=$(printf '// Generated by scripts/setup/setup.sh: the C++ ABI of %s.\n#define _GLIBCXX_USE_CXX11_ABI %s\n' "$T" "$ABI")
# CUDA builds that find the CUDA and NCCL headers compile the c10d shim's NCCL backend.
if [ "$("$ROOT/scripts/setup/setup_nccl.sh" "$ROOT" "$MODE" "$T" "$CACHE")" = nccl ]; then
	abi_h=$(printf '%s\n// The NCCL backend of internal/dist (scripts/setup/setup_nccl.sh found its headers).\n#define MOSE_CUDA 1\n' "$abi_h")
fi
[ "$(cat "$ROOT/.build/include/mose_abi.h" 2>/dev/null)" = "$abi_h" ] || printf '%s\n' "$abi_h" >"$ROOT/.build/include/mose_abi.h"
cat >"$ROOT/.build/setup.env" <<EOF
LIBTORCH=$T
TORCH_VERSION=$VERSION
TORCH_LINE=$major.$minor
MOSE_MODE=$MODE
CXX11_ABI=$ABI
GOTCH=$G
DISABLED_WRAPPERS="$DISABLED"
LINK_ONLY=$LINK_ONLY
EOF

# gloo's headers for the c10d shim (internal/dist): fetched once into the cache.
"$ROOT/scripts/setup/setup_gloo.sh" "$ROOT" "$CACHE"

# ---------------------------------------------------------------- 5. smoke test
log="$ROOT/.build/smoke-build.log"
start=$(date +%s)
if ! (cd "$ROOT" && go build -o .build/smoke ./cmd/smoke) >"$log" 2>&1; then
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
if [ "$LINK_ONLY" = 1 ]; then
	info "ready (link only, smoke test built but not run): libtorch $VERSION ($MODE, cxx11 ABI=$ABI) from $SOURCE; build ${built}s"
	exit 0
fi
out=$("$ROOT/.build/smoke" 2>&1) || die "the libtorch smoke test failed to run: $out" \
	"fix: check that $T/lib holds every library libtorch_cpu.so needs (ldd $T/lib/libtorch_cpu.so)"
info "$out"
info "ready: libtorch $VERSION ($MODE, cxx11 ABI=$ABI) from $SOURCE; build ${built}s"
