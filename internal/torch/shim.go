package torch

// The paths below are made by scripts/setup/setup.sh: .build/libtorch links to the
// libtorch in use, and .build/include/mose_abi.h fixes the C++ ABI to match it.

/*
#cgo CXXFLAGS: -std=c++17 -O2 -g0 -Wno-deprecated-declarations
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/include
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/libtorch/include
#cgo CXXFLAGS: -I${SRCDIR}/../../.build/libtorch/include/torch/csrc/api/include
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import "unsafe"

// shimError turns a shim's malloc'ed message into an OpError (nil for NULL).
func shimError(op string, msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return &OpError{Op: op, Msg: trimTrace(C.GoString(msg))}
}

// sdpaNoMask runs libtorch's scaled_dot_product_attention with no mask.
func (s *Scope) sdpaNoMask(q, k, v *Tensor, causal bool, scale float64) *Tensor {
	const op = "scaled_dot_product_attention"
	scaleNull := C.int(0)
	if scale == 0 {
		scaleNull = 1
	}
	msg := C.mose_sdpa_nomask((*unsafe.Pointer)(unsafe.Pointer(&s.out[0])),
		unsafe.Pointer(q.c), unsafe.Pointer(k.c), unsafe.Pointer(v.c),
		C.int(b2i(causal)), C.double(scale), scaleNull)
	if err := shimError(op, msg); err != nil {
		s.Fail(err)
		return nil
	}
	return s.track(s.out[0])
}

// SetDeterministic switches libtorch's deterministic mode on or off for the
// whole process: deterministic algorithms (an op without a deterministic
// implementation fails instead of running) and scaled-dot-product attention
// on its math backend only (the fused attention backwards use atomics on
// CUDA). On CUDA, cuBLAS also needs CUBLAS_WORKSPACE_CONFIG=:4096:8 in the
// environment before its first use, or libtorch fails the first matmul.
// It makes seeded CUDA runs, and resumes, bit-identical at some speed cost.
func SetDeterministic(on bool) error {
	return shimError("set_deterministic", C.mose_set_deterministic(C.int(b2i(on))))
}

// Deterministic reports whether libtorch's deterministic algorithms are on.
func Deterministic() bool { return C.mose_deterministic() != 0 }
