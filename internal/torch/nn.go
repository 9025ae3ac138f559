package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// Silu returns x·σ(x).
func (s *Scope) Silu(t *Tensor) *Tensor { return s.unary("silu", t, lib.AtgSilu) }

// Gelu returns the exact (erf) GELU of x.
func (s *Scope) Gelu(t *Tensor) *Tensor {
	if !s.ok("gelu", t) {
		return nil
	}
	lib.AtgGelu(&s.out[0], t.c, "none")
	return s.result("gelu")
}

// Sigmoid returns σ(x).
func (s *Scope) Sigmoid(t *Tensor) *Tensor { return s.unary("sigmoid", t, lib.AtgSigmoid) }

// Dropout zeroes elements with probability p and scales the rest by 1/(1-p)
// when train is true; otherwise it returns t unchanged (a new handle).
func (s *Scope) Dropout(t *Tensor, p float64, train bool) *Tensor {
	if !s.ok("dropout", t) {
		return nil
	}
	if !train || p == 0 {
		return s.Alias(t)
	}
	lib.AtgDropout(&s.out[0], t.c, p, 1)
	return s.result("dropout")
}

// Reduction selects how CrossEntropy reduces over samples.
type Reduction int64

// Reductions, as numbered by libtorch.
const (
	ReduceNone Reduction = 0
	ReduceMean Reduction = 1
	ReduceSum  Reduction = 2
)

// CrossEntropy is the softmax cross-entropy of logits (N,C) against int64
// targets (N); targets equal to ignore contribute nothing (and are not counted
// by ReduceMean).
func (s *Scope) CrossEntropy(logits, targets *Tensor, ignore int64, red Reduction) *Tensor {
	if !s.ok("cross_entropy", logits, targets) {
		return nil
	}
	lib.AtgCrossEntropyLoss(&s.out[0], logits.c, targets.c, nil, int64(red), ignore, 0)
	return s.result("cross_entropy")
}

// Attention is scaled dot-product attention: q (B,H,Tq,E), k (B,H,Tk,E),
// v (B,H,Tk,Ev) -> (B,H,Tq,Ev). mask is nil, a bool mask (true = attend) or an
// additive float mask broadcastable to (B,H,Tq,Tk); causal applies the
// lower-triangular mask; scale 0 means 1/√E. Without a mask it reaches
// libtorch's fused kernels (flash attention on CPU and CUDA).
func (s *Scope) Attention(q, k, v, mask *Tensor, causal bool, scale float64) *Tensor {
	const op = "scaled_dot_product_attention"
	if mask == nil {
		if !s.ok(op, q, k, v) {
			return nil
		}
		return s.sdpaNoMask(q, k, v, causal, scale)
	}
	if !s.ok(op, q, k, v, mask) {
		return nil
	}
	scaleNull := 0
	if scale == 0 {
		scaleNull = 1
	}
	lib.AtgScaledDotProductAttention(&s.out[0], q.c, k.c, v.c, mask.c, 0, b2i(causal), scale, scaleNull)
	return s.result(op)
}
