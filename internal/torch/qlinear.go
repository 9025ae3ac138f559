package torch

/*
#include <stdlib.h>
char *mose_qlinear(void **result, void *x, void *bias, int kind, void **parts, int nparts, long long out,
                   long long in, int dtype);
void mose_qlinear_release(void);
*/
import "C"

import "unsafe"

// QuantKind names a quantized weight layout QuantLinear dequantizes.
type QuantKind int

// The layouts (internal/quant's NF4 and Int8).
const (
	QuantNF4  QuantKind = 1 // parts: data (N/2) uint8, scalers (N/64) int8, factor (N/16384), mean (), pair table (256,2)
	QuantInt8 QuantKind = 2 // parts: codes (out,in) int8, scale (out,1) float32
)

// QuantLinear is Linear(x, Ŵ, bias) for a weight stored quantized as parts,
// Ŵ (out,in) in dtype dt: an autograd function that saves the parts, not Ŵ,
// and dequantizes again in its backward, which returns x's gradient only.
// Ŵ is internal/quant's dequantized weight bit for bit.
// x: (…,in) -> (…,out)
func (s *Scope) QuantLinear(x, bias *Tensor, kind QuantKind, parts []*Tensor, out, in int64, dt DType) *Tensor {
	const op = "quant_linear"
	check := append([]*Tensor{x}, parts...)
	if bias != nil {
		check = append(check, bias)
	}
	if !s.ok(op, check...) {
		return nil
	}
	cs := C.malloc(C.size_t(len(parts)) * C.size_t(unsafe.Sizeof(uintptr(0))))
	defer C.free(cs)
	ptrs := unsafe.Slice((*unsafe.Pointer)(cs), len(parts))
	for i, p := range parts {
		ptrs[i] = unsafe.Pointer(p.c)
	}
	var b unsafe.Pointer
	if bias != nil {
		b = unsafe.Pointer(bias.c)
	}
	msg := C.mose_qlinear((*unsafe.Pointer)(unsafe.Pointer(&s.out[0])), unsafe.Pointer(x.c), b, C.int(kind),
		(*unsafe.Pointer)(cs), C.int(len(parts)), C.longlong(out), C.longlong(in), C.int(dt))
	if err := shimError(op, msg); err != nil {
		s.Fail(err)
		return nil
	}
	return s.track(s.out[0])
}

// ReleaseQuantScratch frees the buffers QuantLinear dequantizes into (kept
// across calls, one set per device and dtype, as large as the largest
// weight seen); the next QuantLinear makes them again. Call it on the
// tensor thread once no quantized model is in use.
func ReleaseQuantScratch() { C.mose_qlinear_release() }
