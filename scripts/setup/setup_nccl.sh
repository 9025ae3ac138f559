#!/usr/bin/env bash
# scripts/setup/setup_nccl.sh ROOT MODE [LIBTORCH CACHE]: the headers the c10d
# shim's NCCL backend (internal/dist) compiles against, on CUDA builds
# (MODE=cuda).
#
# libtorch's ProcessGroupNCCL.hpp includes ATen's CUDA context, so it needs the
# CUDA toolkit's headers (cuda_runtime_api.h, crt/host_config.h, cublas_v2.h,
# cublasLt.h, cusparse.h, cusolverDn.h) and NCCL's nccl.h; the implementation
# is libtorch_cuda.so's. They are looked up, in order, in MOSE_CUDA_INCLUDE,
# $CUDA_HOME/include and /usr/local/cuda/include; nccl.h also in
# MOSE_NCCL_INCLUDE, /usr/include and the site-packages of $PYTHON (the
# nvidia-nccl wheel that pip installs with torch: nvidia/nccl/include).
# When LIBTORCH came from a PyPI torch wheel that pins its CUDA through the
# cuda-toolkit meta package (torch 2.11: CUDA 13) and none of those has them,
# the headers of exactly the pinned NVIDIA wheels (cuda-runtime, cuda-crt,
# cuda-cccl, cublas, cusparse, cusolver, nccl) are fetched with pip into
# CACHE/cuda-headers/<torch version>/ once (about 1 GB of wheels; headers
# only are kept). Only declarations are used: every symbol is libtorch's.
#
# Found: .build/cuda/include and .build/cuda/nccl point at them and the script
# prints "nccl" (setup.sh then defines MOSE_CUDA). Not found: it says what is
# missing on stderr and prints nothing; the build works, and a CUDA
# data-parallel run is refused by name (Gloo on the CPU is unaffected).
set -euo pipefail
ROOT=$1
MODE=$2
rm -rf "$ROOT/.build/cuda"
[ "$MODE" = cuda ] || exit 0
note() { echo "setup: $*" >&2; }
need=(cuda_runtime_api.h crt/host_config.h cublas_v2.h cublasLt.h cusparse.h cusolverDn.h)
inc=""
for d in ${MOSE_CUDA_INCLUDE:-} ${CUDA_HOME:+$CUDA_HOME/include} /usr/local/cuda/include; do
	ok=1
	for h in "${need[@]}"; do [ -f "$d/$h" ] || ok=0; done
	if [ "$ok" = 1 ]; then inc=$d; break; fi
done
# wheel_headers: the pinned NVIDIA wheels' include/ merged into the cache.
wheel_headers() {
	local lt=${1:-} cache=${2:-} wheel meta ct ctwheel ctmeta pins dest tmp pkg pin nccl_pin w
	[ -n "$lt" ] && [ -n "$cache" ] && [ -f "$lt/SOURCE" ] || return 1
	wheel=$(cat "$lt/SOURCE")
	[ -f "$wheel" ] || return 1
	dest="$cache/cuda-headers/$(cat "$lt/build-version" 2>/dev/null || echo unknown)"
	if [ -f "$dest/.complete" ]; then echo "$dest/include"; return 0; fi
	command -v pip >/dev/null && command -v unzip >/dev/null || return 1
	meta=$(unzip -p "$wheel" '*.dist-info/METADATA')
	ct=$(echo "$meta" | sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([^ ;]*\).*/\1/p' | head -1)
	nccl_pin=$(echo "$meta" | sed -n 's/^Requires-Dist: \(nvidia-nccl-cu[0-9]*\)==\([^ ;]*\).*/\1==\2/p' | head -1)
	[ -n "$ct" ] && [ -n "$nccl_pin" ] || return 1
	tmp=$(mktemp -d "$cache/.cuda-headers.XXXXXX")
	if ! pip download --no-deps --only-binary=:all: "cuda-toolkit==$ct" -d "$tmp/w" >"$tmp/pip.log" 2>&1; then rm -rf "$tmp"; return 1; fi
	ctwheel=$(ls "$tmp"/w/cuda_toolkit-*.whl | head -1)
	ctmeta=$(unzip -p "$ctwheel" '*.dist-info/METADATA')
	pins="$nccl_pin"
	for pkg in nvidia-cuda-runtime nvidia-cuda-crt nvidia-cuda-cccl nvidia-cublas nvidia-cusparse nvidia-cusolver; do
		pin=$(echo "$ctmeta" | sed -n "s/^Requires-Dist: $pkg==\([^ ;]*\);.*extra == .all.*/\1/p" | head -1)
		[ -n "$pin" ] || { rm -rf "$tmp"; return 1; }
		pins="$pins $pkg==$pin"
	done
	note "fetching the CUDA and NCCL headers of the NVIDIA wheels torch $(cat "$lt/build-version") pins (about 1 GB, once): $pins"
	# shellcheck disable=SC2086 # a space-separated list of specs
	if ! pip download --no-deps --only-binary=:all: $pins -d "$tmp/w" >>"$tmp/pip.log" 2>&1; then
		note "pip could not fetch them: $(tail -1 "$tmp/pip.log")"
		rm -rf "$tmp"
		return 1
	fi
	mkdir -p "$tmp/x" "$tmp/include"
	for w in "$tmp"/w/nvidia_*.whl; do
		unzip -q -o "$w" 'nvidia/*/include/*' -d "$tmp/x" 2>/dev/null || true
	done
	for d in "$tmp"/x/nvidia/*/include; do
		cp -rn "$d"/. "$tmp/include/"
	done
	rm -rf "$tmp/w" "$tmp/x" "$dest"
	mkdir -p "$(dirname "$dest")"
	mv "$tmp" "$dest"
	touch "$dest/.complete"
	echo "$dest/include"
}
if [ -z "$inc" ] && fetched=$(wheel_headers "${3:-}" "${4:-}"); then
	inc=$fetched
	for h in "${need[@]}" nccl.h; do [ -f "$inc/$h" ] || { note "the fetched headers lack $h"; inc=""; break; }; done
fi
if [ -z "$inc" ]; then
	note "NCCL backend not compiled: no CUDA toolkit headers (${need[*]}) in MOSE_CUDA_INCLUDE, \$CUDA_HOME/include or /usr/local/cuda/include; data-parallel training on CUDA will be refused. fix: install the CUDA toolkit headers matching libtorch's CUDA, or set MOSE_CUDA_INCLUDE"
	exit 0
fi
nccl=""
site=""
if py=$(command -v "${PYTHON:-python3}" 2>/dev/null); then
	site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
fi
for d in ${MOSE_NCCL_INCLUDE:-} "$inc" /usr/include ${site:+$site/nvidia/nccl/include}; do
	if [ -f "$d/nccl.h" ]; then nccl=$d; break; fi
done
if [ -z "$nccl" ]; then
	note "NCCL backend not compiled: nccl.h not found (MOSE_NCCL_INCLUDE, $inc, /usr/include, ${site:-<no python>}/nvidia/nccl/include); data-parallel training on CUDA will be refused. fix: pip install the nvidia-nccl wheel torch pins, or set MOSE_NCCL_INCLUDE"
	exit 0
fi
mkdir -p "$ROOT/.build/cuda"
ln -sfn "$inc" "$ROOT/.build/cuda/include"
ln -sfn "$nccl" "$ROOT/.build/cuda/nccl"
note "NCCL backend: CUDA headers from $inc, nccl.h from $nccl"
echo nccl
