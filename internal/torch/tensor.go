package torch

import (
	"sync/atomic"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// Tensor is a handle to a libtorch tensor. It is owned either by the Scope that
// created it or, after Scope.Keep, by the caller, who must call Free once.
type Tensor struct {
	c     lib.Ctensor
	owner *Scope
}

var live atomic.Int64

// Live returns the number of tensor handles created by this package and not yet
// freed. A loop that frees what it creates keeps it flat.
func Live() int64 { return live.Load() }

// Free releases the handle. It is safe to call twice and on nil. The storage is
// released when no other handle (views, autograd) refers to it.
func (t *Tensor) Free() {
	if t == nil || t.c == nil {
		return
	}
	lib.AtFree(t.c)
	t.c = nil
	t.owner = nil
	live.Add(-1)
}

// Freed reports whether t is nil or has been freed.
func (t *Tensor) Freed() bool { return t == nil || t.c == nil }

// Dim returns the number of dimensions, or 0 for a freed tensor.
func (t *Tensor) Dim() int {
	if t.Freed() {
		return 0
	}
	return int(lib.AtDim(t.c))
}

// Shape returns the sizes of t (a new slice), or nil for a freed tensor.
func (t *Tensor) Shape() []int64 {
	n := t.Dim()
	if n == 0 {
		return []int64{}
	}
	shape := make([]int64, n)
	lib.AtShape(t.c, unsafe.Pointer(&shape[0]))
	return shape
}

// Size returns the size of dimension d (negative d counts from the end), or -1
// if d is out of range.
func (t *Tensor) Size(d int) int64 {
	shape := t.Shape()
	if d < 0 {
		d += len(shape)
	}
	if d < 0 || d >= len(shape) {
		return -1
	}
	return shape[d]
}

// Numel returns the number of elements.
func (t *Tensor) Numel() int64 {
	if t.Freed() {
		return 0
	}
	return numel(t.Shape())
}

// DType returns the element type.
func (t *Tensor) DType() DType {
	if t.Freed() {
		return -1
	}
	return DType(lib.AtScalarType(t.c))
}

// Device returns where t lives.
func (t *Tensor) Device() Device {
	if t.Freed() {
		return CPU
	}
	return deviceOf(t)
}

// Defined reports whether the handle refers to a defined tensor (an undefined
// one is, for instance, the gradient of a tensor before any backward).
func (t *Tensor) Defined() bool { return !t.Freed() && lib.AtDefined(t.c) }

// RequiresGrad reports whether autograd records ops on t.
func (t *Tensor) RequiresGrad() bool { return !t.Freed() && lib.AtRequiresGrad(t.c) }

func numel(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		n *= s
	}
	return n
}
