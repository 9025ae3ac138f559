#!/usr/bin/env bash
# scripts/setup_nccl.sh ROOT MODE: the headers the c10d shim's NCCL backend
# (internal/dist) compiles against, on CUDA builds (MODE=cuda).
#
# libtorch's ProcessGroupNCCL.hpp includes ATen's CUDA context, so it needs the
# CUDA toolkit's headers (cuda_runtime_api.h, crt/host_config.h, cublas_v2.h,
# cublasLt.h, cusparse.h, cusolverDn.h) and NCCL's nccl.h; the implementation
# is libtorch_cuda.so's. They are looked up, in order, in MOSE_CUDA_INCLUDE,
# $CUDA_HOME/include and /usr/local/cuda/include; nccl.h also in
# MOSE_NCCL_INCLUDE, /usr/include and the site-packages of $PYTHON (the
# nvidia-nccl wheel that pip installs with torch: nvidia/nccl/include).
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
