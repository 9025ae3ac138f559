package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// View returns a view of t with the given shape (one dim may be -1).
func (s *Scope) View(t *Tensor, shape ...int64) *Tensor {
	if !s.ok("view", t) {
		return nil
	}
	lib.AtgView(&s.out[0], t.c, dimsOf(shape), len(shape))
	return s.result("view")
}

// Reshape is View when possible, otherwise a copy.
func (s *Scope) Reshape(t *Tensor, shape ...int64) *Tensor {
	if !s.ok("reshape", t) {
		return nil
	}
	lib.AtgReshape(&s.out[0], t.c, dimsOf(shape), len(shape))
	return s.result("reshape")
}

// Permute reorders dimensions: result dim i is t's dim dims[i].
func (s *Scope) Permute(t *Tensor, dims ...int64) *Tensor {
	if !s.ok("permute", t) {
		return nil
	}
	lib.AtgPermute(&s.out[0], t.c, dimsOf(dims), len(dims))
	return s.result("permute")
}

// Transpose swaps dimensions d0 and d1 (a view).
func (s *Scope) Transpose(t *Tensor, d0, d1 int64) *Tensor {
	if !s.ok("transpose", t) {
		return nil
	}
	lib.AtgTranspose(&s.out[0], t.c, d0, d1)
	return s.result("transpose")
}

// Contiguous returns t laid out row-major (t itself, as a new handle, if it already is).
func (s *Scope) Contiguous(t *Tensor) *Tensor { return s.unary("contiguous", t, lib.AtgContiguous) }

// Narrow returns the slice [start, start+length) of dimension dim (a view).
func (s *Scope) Narrow(t *Tensor, dim, start, length int64) *Tensor {
	if !s.ok("narrow", t) {
		return nil
	}
	lib.AtgNarrow(&s.out[0], t.c, dim, start, length)
	return s.result("narrow")
}

// Cat concatenates tensors along dim.
func (s *Scope) Cat(ts []*Tensor, dim int64) *Tensor {
	cs, ok := s.handles("cat", ts)
	if !ok {
		return nil
	}
	lib.AtgCat(&s.out[0], cs, len(cs), dim)
	return s.result("cat")
}

// Stack stacks same-shaped tensors along a new dimension dim.
func (s *Scope) Stack(ts []*Tensor, dim int64) *Tensor {
	cs, ok := s.handles("stack", ts)
	if !ok {
		return nil
	}
	lib.AtgStack(&s.out[0], cs, len(cs), dim)
	return s.result("stack")
}

// Unsqueeze inserts a dimension of size 1 at dim.
func (s *Scope) Unsqueeze(t *Tensor, dim int64) *Tensor {
	if !s.ok("unsqueeze", t) {
		return nil
	}
	lib.AtgUnsqueeze(&s.out[0], t.c, dim)
	return s.result("unsqueeze")
}

// Squeeze removes dimension dim if it has size 1.
func (s *Scope) Squeeze(t *Tensor, dim int64) *Tensor {
	if !s.ok("squeeze", t) {
		return nil
	}
	lib.AtgSqueezeDim(&s.out[0], t.c, dim)
	return s.result("squeeze")
}

// Expand broadcasts size-1 dimensions to shape (-1 keeps a size), as a view.
func (s *Scope) Expand(t *Tensor, shape ...int64) *Tensor {
	if !s.ok("expand", t) {
		return nil
	}
	lib.AtgExpand(&s.out[0], t.c, dimsOf(shape), len(shape), 0)
	return s.result("expand")
}

// Flatten merges dimensions start..end (inclusive; negative counts from the end).
func (s *Scope) Flatten(t *Tensor, start, end int64) *Tensor {
	if !s.ok("flatten", t) {
		return nil
	}
	lib.AtgFlatten(&s.out[0], t.c, start, end)
	return s.result("flatten")
}

// Clone returns a copy of t with its own storage (autograd-tracked).
func (s *Scope) Clone(t *Tensor) *Tensor {
	if !s.ok("clone", t) {
		return nil
	}
	lib.AtgToDevice(&s.out[0], t.c, t.Device().c(), int32(t.DType()), 0, 1)
	return s.result("clone")
}

// To converts t to dtype dt on its device (a new handle to t if it already is dt).
func (s *Scope) To(t *Tensor, dt DType) *Tensor {
	if !s.ok("to_dtype", t) {
		return nil
	}
	lib.AtgTotype(&s.out[0], t.c, int32(dt))
	return s.result("to_dtype")
}

// ToDevice moves t to dev, keeping its dtype.
func (s *Scope) ToDevice(t *Tensor, dev Device) *Tensor {
	if !s.ok("to_device", t) {
		return nil
	}
	lib.AtgToDevice(&s.out[0], t.c, dev.c(), int32(t.DType()), 0, 0)
	return s.result("to_device")
}

// Alias returns a second handle to the same tensor (shared storage and
// autograd identity), so that an owner can hand out a reference without
// giving up its own.
func (s *Scope) Alias(t *Tensor) *Tensor {
	if !s.ok("alias", t) {
		return nil
	}
	c := lib.AtShallowClone(t.c)
	if err := lastError("alias"); err != nil {
		s.Fail(err)
		return nil
	}
	return s.track(c)
}
