package torch

import (
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// copyOut converts t to dt on the CPU if needed and copies its elements to p.
func copyOut(op string, t *Tensor, dt DType, p unsafe.Pointer, n int) error {
	if t.Freed() {
		return goErr(op, "%w", ErrFreed)
	}
	src := t
	if t.DType() != dt {
		s := NewScope()
		defer s.Close()
		src = s.To(t, dt)
		if err := s.Err(); err != nil {
			return err
		}
	}
	if n == 0 {
		return nil
	}
	lib.AtCopyData(src.c, p, uint(n), uint(dt.Size()))
	return lastError(op)
}

// Float32s copies t's elements, converted to float32, into a new slice
// (row-major, whatever t's device, dtype and strides).
func (t *Tensor) Float32s() ([]float32, error) {
	out := make([]float32, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, copyOut("float32s", t, Float32, p, len(out))
}

// Float64s copies t's elements, converted to float64, into a new slice.
func (t *Tensor) Float64s() ([]float64, error) {
	out := make([]float64, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, copyOut("float64s", t, Float64, p, len(out))
}

// Int64s copies t's elements, converted to int64, into a new slice.
func (t *Tensor) Int64s() ([]int64, error) {
	out := make([]int64, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, copyOut("int64s", t, Int64, p, len(out))
}

// Bools copies t's elements, converted to bool, into a new slice.
func (t *Tensor) Bools() ([]bool, error) {
	out := make([]bool, t.Numel())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, copyOut("bools", t, Bool, p, len(out))
}

// Bytes copies t's elements in its own dtype as little-endian bytes (for
// instance to write bfloat16 weights to safetensors).
func (t *Tensor) Bytes() ([]byte, error) {
	if t.Freed() {
		return nil, goErr("bytes", "%w", ErrFreed)
	}
	dt := t.DType()
	if dt.Size() == 0 {
		return nil, goErr("bytes", "%v: %w", dt, ErrDType)
	}
	out := make([]byte, int(t.Numel())*dt.Size())
	var p unsafe.Pointer
	if len(out) > 0 {
		p = unsafe.Pointer(&out[0])
	}
	return out, copyOut("bytes", t, dt, p, int(t.Numel()))
}

// Item returns the value of a one-element tensor as float64.
func (t *Tensor) Item() (float64, error) {
	if n := t.Numel(); n != 1 && !t.Freed() {
		return 0, goErr("item", "tensor of shape %v has %d elements, want 1: %w", t.Shape(), n, ErrShape)
	}
	v, err := t.Float64s()
	if err != nil {
		return 0, err
	}
	return v[0], nil
}
