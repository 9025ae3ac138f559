package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// SetRequiresGrad turns autograd recording on or off for a leaf tensor.
func (t *Tensor) SetRequiresGrad(on bool) error {
	if t.Freed() {
		return goErr("set_requires_grad", "%w", ErrFreed)
	}
	var out [1]lib.Ctensor
	lib.AtgSetRequiresGrad(&out[0], t.c, b2i(on))
	if err := lastError("set_requires_grad"); err != nil {
		return err
	}
	lib.AtFree(out[0]) // a second handle to t itself
	return nil
}

// Backward computes the gradients of the scalar t with respect to every leaf
// that requires grad, accumulating them into their .grad. The graph is freed.
func (t *Tensor) Backward() error {
	if t.Freed() {
		return goErr("backward", "%w", ErrFreed)
	}
	lib.AtBackward(t.c, 0, 0)
	return lastError("backward")
}

// Grad returns a handle to t's accumulated gradient, or nil (and no error) if
// t has none yet. Writes through the handle (ZeroFill, CopyFrom) change t.grad.
func (s *Scope) Grad(t *Tensor) *Tensor {
	if !s.ok("grad", t) {
		return nil
	}
	lib.AtgGrad(&s.out[0], t.c)
	if err := lastError("grad"); err != nil {
		s.Fail(err)
		return nil
	}
	if !lib.AtDefined(s.out[0]) {
		lib.AtFree(s.out[0])
		return nil
	}
	return s.track(s.out[0])
}

// ZeroGrad sets t's gradient to zero in place, if it has one. No handle
// outlives the call, so calling it every step leaks nothing.
func (t *Tensor) ZeroGrad() error {
	if t.Freed() {
		return goErr("zero_grad", "%w", ErrFreed)
	}
	var out [1]lib.Ctensor
	lib.AtgGrad(&out[0], t.c)
	if err := lastError("zero_grad"); err != nil {
		return err
	}
	g := out[0]
	defer lib.AtFree(g)
	if !lib.AtDefined(g) {
		return nil
	}
	lib.AtgZero_(&out[0], g)
	if err := lastError("zero_grad"); err != nil {
		return err
	}
	lib.AtFree(out[0])
	return nil
}

// Detach returns a tensor sharing t's storage but cut from the autograd graph.
func (s *Scope) Detach(t *Tensor) *Tensor { return s.unary("detach", t, lib.AtgDetach) }

// GradEnabled reports whether autograd records ops on this thread.
func GradEnabled() bool {
	prev, err := setGradEnabled(true)
	if err == nil {
		_, err = setGradEnabled(prev)
	}
	return err == nil && prev
}

// NoGrad runs fn with autograd recording off on this thread and restores the
// previous mode afterwards, so nested calls compose.
func NoGrad(fn func() error) (err error) {
	prev, err := setGradEnabled(false)
	if err != nil {
		return err
	}
	defer func() {
		if _, rerr := setGradEnabled(prev); err == nil {
			err = rerr
		}
	}()
	return fn()
}
