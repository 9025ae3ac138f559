package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// The ops below serve weight quantization (internal/quant): they are the
// aten ops torchao's NF4 and int8 code calls, so that the results match it
// bit for bit.

// MinDim returns the minimum along dim and the index of its first
// occurrence (torch.min(t, dim)).
func (s *Scope) MinDim(t *Tensor, dim int64, keep bool) (values, indices *Tensor) {
	if !s.ok("min_dim", t) {
		return nil, nil
	}
	lib.AtgMinDim(&s.out[0], t.c, dim, b2i(keep))
	r := s.results("min_dim", 2)
	return r[0], r[1]
}

// Round rounds half to even (torch.round).
func (s *Scope) Round(t *Tensor) *Tensor { return s.unary("round", t, lib.AtgRound) }

// Reciprocal returns 1/t elementwise (torch.reciprocal, which Python's
// `number / tensor` calls before multiplying by the number).
func (s *Scope) Reciprocal(t *Tensor) *Tensor { return s.unary("reciprocal", t, lib.AtgReciprocal) }

// Amax returns the maximum over dims (torch.amax).
func (s *Scope) Amax(t *Tensor, dims []int64, keep bool) *Tensor {
	if !s.ok("amax", t) {
		return nil
	}
	lib.AtgAmax(&s.out[0], t.c, dims, len(dims), b2i(keep))
	return s.result("amax")
}

// Bucketize returns, for each value of t, the index of the first boundary
// that is >= it (torch.bucketize(t, boundaries), right=False), as int64.
// boundaries: (K) ascending; t: (…) -> (…)
func (s *Scope) Bucketize(t, boundaries *Tensor) *Tensor {
	if !s.ok("bucketize", t, boundaries) {
		return nil
	}
	lib.AtgBucketize(&s.out[0], t.c, boundaries.c, 0, 0)
	return s.result("bucketize")
}
