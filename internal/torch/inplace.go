package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// The in-place ops below change t's storage and return only an error. libtch
// returns a second handle to t for every in-place op; it is freed right away.

func inPlace(op string, t *Tensor, call func(out *lib.Ctensor)) error {
	if t.Freed() {
		return goErr(op, "%w", ErrFreed)
	}
	var out [1]lib.Ctensor
	call(&out[0])
	if err := lastError(op); err != nil {
		return err
	}
	lib.AtFree(out[0])
	return nil
}

// CopyFrom copies src's values into t (same number of elements, broadcasting
// allowed; dtype and device converted). Use it under NoGrad for parameters.
func (t *Tensor) CopyFrom(src *Tensor) error {
	if t.Freed() || src.Freed() {
		return goErr("copy_", "%w", ErrFreed)
	}
	lib.AtCopy_(t.c, src.c)
	return lastError("copy_")
}

// ZeroFill sets every element of t to zero.
func (t *Tensor) ZeroFill() error {
	return inPlace("zero_", t, func(out *lib.Ctensor) { lib.AtgZero_(out, t.c) })
}

// Fill sets every element of t to v.
func (t *Tensor) Fill(v float64) error {
	return inPlace("fill_", t, func(out *lib.Ctensor) {
		sc := lib.AtsFloat(v)
		lib.AtgFill_(out, t.c, sc)
		lib.AtsFree(sc)
	})
}

// UniformFill draws every element of t from U[lo, hi) with libtorch's generator.
func (t *Tensor) UniformFill(lo, hi float64) error {
	return inPlace("uniform_", t, func(out *lib.Ctensor) { lib.AtgUniform_(out, t.c, lo, hi) })
}
