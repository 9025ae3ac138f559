package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

type (
	unaryFn  func(out *lib.Ctensor, a lib.Ctensor)
	binaryFn func(out *lib.Ctensor, a, b lib.Ctensor)
	scalarFn func(out *lib.Ctensor, a lib.Ctensor, v lib.Cscalar)
)

func (s *Scope) unary(op string, t *Tensor, f unaryFn) *Tensor {
	if !s.ok(op, t) {
		return nil
	}
	f(&s.out[0], t.c)
	return s.result(op)
}

func (s *Scope) binary(op string, a, b *Tensor, f binaryFn) *Tensor {
	if !s.ok(op, a, b) {
		return nil
	}
	f(&s.out[0], a.c, b.c)
	return s.result(op)
}

func (s *Scope) scalar(op string, t *Tensor, v float64, f scalarFn) *Tensor {
	if !s.ok(op, t) {
		return nil
	}
	sc := lib.AtsFloat(v)
	f(&s.out[0], t.c, sc)
	lib.AtsFree(sc)
	return s.result(op)
}

// Add returns a + b (broadcasting).
func (s *Scope) Add(a, b *Tensor) *Tensor { return s.binary("add", a, b, lib.AtgAdd) }

// Sub returns a - b (broadcasting).
func (s *Scope) Sub(a, b *Tensor) *Tensor { return s.binary("sub", a, b, lib.AtgSub) }

// Mul returns a * b elementwise (broadcasting).
func (s *Scope) Mul(a, b *Tensor) *Tensor { return s.binary("mul", a, b, lib.AtgMul) }

// Div returns a / b elementwise (broadcasting, true division).
func (s *Scope) Div(a, b *Tensor) *Tensor { return s.binary("div", a, b, lib.AtgDiv) }

// Maximum returns the elementwise maximum of a and b.
func (s *Scope) Maximum(a, b *Tensor) *Tensor { return s.binary("maximum", a, b, lib.AtgMaximum) }

// Minimum returns the elementwise minimum of a and b.
func (s *Scope) Minimum(a, b *Tensor) *Tensor { return s.binary("minimum", a, b, lib.AtgMinimum) }

// AddScalar returns t + v.
func (s *Scope) AddScalar(t *Tensor, v float64) *Tensor {
	return s.scalar("add_scalar", t, v, lib.AtgAddScalar)
}

// MulScalar returns t * v.
func (s *Scope) MulScalar(t *Tensor, v float64) *Tensor {
	return s.scalar("mul_scalar", t, v, lib.AtgMulScalar)
}

// DivScalar returns t / v.
func (s *Scope) DivScalar(t *Tensor, v float64) *Tensor {
	return s.scalar("div_scalar", t, v, lib.AtgDivScalar)
}

// PowScalar returns t ** p.
func (s *Scope) PowScalar(t *Tensor, p float64) *Tensor {
	return s.scalar("pow", t, p, lib.AtgPowTensorScalar)
}

// Pow returns a ** b elementwise (broadcasting), with libtorch's kernel (on
// CPU: SLEEF's vectorised powf, the C library's powf for a short tail).
func (s *Scope) Pow(a, b *Tensor) *Tensor { return s.binary("pow", a, b, lib.AtgPow) }

// Neg returns -t.
func (s *Scope) Neg(t *Tensor) *Tensor { return s.unary("neg", t, lib.AtgNeg) }

// Abs returns |t|.
func (s *Scope) Abs(t *Tensor) *Tensor { return s.unary("abs", t, lib.AtgAbs) }

// Square returns t².
func (s *Scope) Square(t *Tensor) *Tensor { return s.unary("square", t, lib.AtgSquare) }

// Sqrt returns √t.
func (s *Scope) Sqrt(t *Tensor) *Tensor { return s.unary("sqrt", t, lib.AtgSqrt) }

// Rsqrt returns 1/√t.
func (s *Scope) Rsqrt(t *Tensor) *Tensor { return s.unary("rsqrt", t, lib.AtgRsqrt) }

// Exp returns eᵗ.
func (s *Scope) Exp(t *Tensor) *Tensor { return s.unary("exp", t, lib.AtgExp) }

// Log returns ln t.
func (s *Scope) Log(t *Tensor) *Tensor { return s.unary("log", t, lib.AtgLog) }

// Sin returns sin t.
func (s *Scope) Sin(t *Tensor) *Tensor { return s.unary("sin", t, lib.AtgSin) }

// Cos returns cos t.
func (s *Scope) Cos(t *Tensor) *Tensor { return s.unary("cos", t, lib.AtgCos) }

// Tanh returns tanh t.
func (s *Scope) Tanh(t *Tensor) *Tensor { return s.unary("tanh", t, lib.AtgTanh) }

// Clamp returns t limited to [lo, hi].
func (s *Scope) Clamp(t *Tensor, lo, hi float64) *Tensor {
	if !s.ok("clamp", t) {
		return nil
	}
	a, b := lib.AtsFloat(lo), lib.AtsFloat(hi)
	lib.AtgClamp(&s.out[0], t.c, a, b)
	lib.AtsFree(a)
	lib.AtsFree(b)
	return s.result("clamp")
}

// ClampMin returns max(t, lo).
func (s *Scope) ClampMin(t *Tensor, lo float64) *Tensor {
	return s.scalar("clamp_min", t, lo, lib.AtgClampMin)
}

// Matmul is torch.matmul: (…,n,k)·(…,k,m) -> (…,n,m) with broadcasting.
func (s *Scope) Matmul(a, b *Tensor) *Tensor { return s.binary("matmul", a, b, lib.AtgMatmul) }

// Bmm is a batched matmul: (B,n,k)·(B,k,m) -> (B,n,m).
func (s *Scope) Bmm(a, b *Tensor) *Tensor { return s.binary("bmm", a, b, lib.AtgBmm) }

// Linear returns x·wᵀ + bias: x (…,in), w (out,in), bias (out) or nil -> (…,out).
func (s *Scope) Linear(x, w, bias *Tensor) *Tensor {
	if bias == nil {
		if !s.ok("linear", x, w) {
			return nil
		}
		lib.AtgLinear(&s.out[0], x.c, w.c, nil)
		return s.result("linear")
	}
	if !s.ok("linear", x, w, bias) {
		return nil
	}
	lib.AtgLinear(&s.out[0], x.c, w.c, bias.c)
	return s.result("linear")
}

// Outer returns the outer product of two vectors: (n)⊗(m) -> (n,m).
func (s *Scope) Outer(a, b *Tensor) *Tensor { return s.binary("outer", a, b, lib.AtgOuter) }

// EqScalar returns the bool mask t == v.
func (s *Scope) EqScalar(t *Tensor, v float64) *Tensor { return s.scalar("eq", t, v, lib.AtgEq) }

// Eq returns the bool mask a == b.
func (s *Scope) Eq(a, b *Tensor) *Tensor { return s.binary("eq", a, b, lib.AtgEqTensor) }

// GtScalar returns the bool mask t > v.
func (s *Scope) GtScalar(t *Tensor, v float64) *Tensor { return s.scalar("gt", t, v, lib.AtgGt) }

// LtScalar returns the bool mask t < v.
func (s *Scope) LtScalar(t *Tensor, v float64) *Tensor { return s.scalar("lt", t, v, lib.AtgLt) }

// Gt returns the bool mask a > b.
func (s *Scope) Gt(a, b *Tensor) *Tensor { return s.binary("gt", a, b, lib.AtgGtTensor) }

// LogicalNot returns !t for a bool tensor.
func (s *Scope) LogicalNot(t *Tensor) *Tensor { return s.unary("logical_not", t, lib.AtgLogicalNot) }

// LogicalAnd returns a && b elementwise.
func (s *Scope) LogicalAnd(a, b *Tensor) *Tensor {
	return s.binary("logical_and", a, b, lib.AtgLogicalAnd)
}

// IsFinite returns the bool mask of finite elements.
func (s *Scope) IsFinite(t *Tensor) *Tensor { return s.unary("isfinite", t, lib.AtgIsfinite) }

// Lerp returns a + w·(b − a).
func (s *Scope) Lerp(a, b *Tensor, w float64) *Tensor {
	if !s.ok("lerp", a, b) {
		return nil
	}
	sc := lib.AtsFloat(w)
	lib.AtgLerp(&s.out[0], a.c, b.c, sc)
	lib.AtsFree(sc)
	return s.result("lerp")
}
