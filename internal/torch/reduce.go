package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

const noDType = -1 // libtch's "nullopt" for optional dtypes

func b2i(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// Sum returns the sum of all elements (a 0-dim tensor).
func (s *Scope) Sum(t *Tensor) *Tensor {
	if !s.ok("sum", t) {
		return nil
	}
	lib.AtgSum(&s.out[0], t.c, noDType)
	return s.result("sum")
}

// SumDims sums over dims, keeping them as size 1 if keep.
func (s *Scope) SumDims(t *Tensor, dims []int64, keep bool) *Tensor {
	if !s.ok("sum_dims", t) {
		return nil
	}
	if len(dims) == 0 {
		s.Fail(goErr("sum_dims", "no dims given (use Sum): %w", ErrShape))
		return nil
	}
	lib.AtgSumDimIntlist(&s.out[0], t.c, dims, len(dims), b2i(keep), noDType)
	return s.result("sum_dims")
}

// Mean returns the mean of all elements (a 0-dim tensor).
func (s *Scope) Mean(t *Tensor) *Tensor {
	if !s.ok("mean", t) {
		return nil
	}
	lib.AtgMean(&s.out[0], t.c, noDType)
	return s.result("mean")
}

// MeanDims averages over dims, keeping them as size 1 if keep.
func (s *Scope) MeanDims(t *Tensor, dims []int64, keep bool) *Tensor {
	if !s.ok("mean_dims", t) {
		return nil
	}
	if len(dims) == 0 {
		s.Fail(goErr("mean_dims", "no dims given (use Mean): %w", ErrShape))
		return nil
	}
	lib.AtgMeanDim(&s.out[0], t.c, dims, len(dims), b2i(keep), noDType)
	return s.result("mean_dims")
}

// Max returns the largest element (a 0-dim tensor).
func (s *Scope) Max(t *Tensor) *Tensor { return s.unary("max", t, lib.AtgMax) }

// MaxDim returns the maxima along dim and their indices.
func (s *Scope) MaxDim(t *Tensor, dim int64, keep bool) (values, indices *Tensor) {
	if !s.ok("max_dim", t) {
		return nil, nil
	}
	lib.AtgMaxDim(&s.out[0], t.c, dim, b2i(keep))
	r := s.results("max_dim", 2)
	return r[0], r[1]
}

// Argmax returns the indices of the maxima along dim (int64).
func (s *Scope) Argmax(t *Tensor, dim int64, keep bool) *Tensor {
	if !s.ok("argmax", t) {
		return nil
	}
	lib.AtgArgmax(&s.out[0], t.c, dim, 0, b2i(keep))
	return s.result("argmax")
}

// Norm returns the 2-norm of all elements (a 0-dim tensor).
func (s *Scope) Norm(t *Tensor) *Tensor { return s.unary("norm", t, lib.AtgNorm) }

// NormDims returns the p-norm over dims.
func (s *Scope) NormDims(t *Tensor, p float64, dims []int64, keep bool) *Tensor {
	if !s.ok("norm_dims", t) {
		return nil
	}
	sc := lib.AtsFloat(p)
	lib.AtgNormScalaroptDim(&s.out[0], t.c, sc, dims, len(dims), b2i(keep))
	lib.AtsFree(sc)
	return s.result("norm_dims")
}

// LogSumExp returns log Σ exp over dims.
func (s *Scope) LogSumExp(t *Tensor, dims []int64, keep bool) *Tensor {
	if !s.ok("logsumexp", t) {
		return nil
	}
	if len(dims) == 0 {
		s.Fail(goErr("logsumexp", "no dims given: %w", ErrShape))
		return nil
	}
	lib.AtgLogsumexp(&s.out[0], t.c, dims, len(dims), b2i(keep))
	return s.result("logsumexp")
}

// Softmax along dim, computed in t's dtype.
func (s *Scope) Softmax(t *Tensor, dim int64) *Tensor {
	if !s.ok("softmax", t) {
		return nil
	}
	lib.AtgSoftmax(&s.out[0], t.c, dim, noDType)
	return s.result("softmax")
}

// LogSoftmax along dim, computed in t's dtype.
func (s *Scope) LogSoftmax(t *Tensor, dim int64) *Tensor {
	if !s.ok("log_softmax", t) {
		return nil
	}
	lib.AtgLogSoftmax(&s.out[0], t.c, dim, noDType)
	return s.result("log_softmax")
}

// Cumsum returns the cumulative sum along dim.
func (s *Scope) Cumsum(t *Tensor, dim int64) *Tensor {
	if !s.ok("cumsum", t) {
		return nil
	}
	lib.AtgCumsum(&s.out[0], t.c, dim, noDType)
	return s.result("cumsum")
}

// All returns a 0-dim bool tensor: whether every element is true (non-zero).
func (s *Scope) All(t *Tensor) *Tensor { return s.unary("all", t, lib.AtgAll) }

// Any returns a 0-dim bool tensor: whether some element is true (non-zero).
func (s *Scope) Any(t *Tensor) *Tensor { return s.unary("any", t, lib.AtgAny) }

// AllFinite reports whether every element of t is finite. It reads one value
// back to the host (a device sync), so call it once per step, not per op.
func (s *Scope) AllFinite(t *Tensor) (bool, error) {
	sub := s.Child()
	defer sub.Close()
	a := sub.All(sub.IsFinite(t))
	if err := sub.Err(); err != nil {
		return false, err
	}
	v, err := a.Item()
	return v != 0, err
}
