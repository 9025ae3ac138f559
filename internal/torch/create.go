package torch

import (
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
)

// fromData copies n elements of size elt at p into a new CPU tensor.
func (s *Scope) fromData(op string, p unsafe.Pointer, n int, dt DType, shape []int64) *Tensor {
	if !s.ok(op) {
		return nil
	}
	for _, d := range shape {
		if d < 0 {
			s.Fail(goErr(op, "negative size in shape %v: %w", shape, ErrShape))
			return nil
		}
	}
	if want := numel(shape); want != int64(n) {
		s.Fail(goErr(op, "%d values for shape %v (%d elements): %w", n, shape, want, ErrShape))
		return nil
	}
	if n == 0 {
		return s.Zeros(shape, dt, CPU)
	}
	dims := shape
	if len(dims) == 0 {
		dims = []int64{1} // libtch reads dims[0]; ndims = 0 makes a scalar
	}
	c := lib.AtTensorOfData(p, dims, uint(len(shape)), uint(dt.Size()), int(dt))
	if err := lastError(op); err != nil {
		s.Fail(err)
		return nil
	}
	return s.track(c)
}

// FromFloat32 copies data into a new float32 CPU tensor of the given shape.
func (s *Scope) FromFloat32(data []float32, shape ...int64) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return s.fromData("from_float32", p, len(data), Float32, shape)
}

// FromFloat64 copies data into a new float64 CPU tensor of the given shape.
func (s *Scope) FromFloat64(data []float64, shape ...int64) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return s.fromData("from_float64", p, len(data), Float64, shape)
}

// FromInt64 copies data into a new int64 CPU tensor of the given shape.
func (s *Scope) FromInt64(data []int64, shape ...int64) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return s.fromData("from_int64", p, len(data), Int64, shape)
}

// FromBool copies data into a new bool CPU tensor of the given shape.
func (s *Scope) FromBool(data []bool, shape ...int64) *Tensor {
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return s.fromData("from_bool", p, len(data), Bool, shape)
}

// FromBytes copies raw little-endian element bytes of dtype dt (for instance
// bfloat16 weights read from safetensors) into a new CPU tensor.
func (s *Scope) FromBytes(data []byte, dt DType, shape ...int64) *Tensor {
	if dt.Size() == 0 {
		s.Fail(goErr("from_bytes", "%v: %w", dt, ErrDType))
		return nil
	}
	if len(data)%dt.Size() != 0 {
		s.Fail(goErr("from_bytes", "%d bytes is not a whole number of %v elements: %w", len(data), dt, ErrShape))
		return nil
	}
	var p unsafe.Pointer
	if len(data) > 0 {
		p = unsafe.Pointer(&data[0])
	}
	return s.fromData("from_bytes", p, len(data)/dt.Size(), dt, shape)
}

// Zeros returns a tensor of zeros.
func (s *Scope) Zeros(shape []int64, dt DType, dev Device) *Tensor {
	if !s.ok("zeros") {
		return nil
	}
	lib.AtgZeros(&s.out[0], dimsOf(shape), len(shape), int32(dt), dev.c())
	return s.result("zeros")
}

// Ones returns a tensor of ones.
func (s *Scope) Ones(shape []int64, dt DType, dev Device) *Tensor {
	if !s.ok("ones") {
		return nil
	}
	lib.AtgOnes(&s.out[0], dimsOf(shape), len(shape), int32(dt), dev.c())
	return s.result("ones")
}

// Full returns a tensor filled with v.
func (s *Scope) Full(shape []int64, v float64, dt DType, dev Device) *Tensor {
	if !s.ok("full") {
		return nil
	}
	sc := lib.AtsFloat(v)
	lib.AtgFull(&s.out[0], dimsOf(shape), len(shape), sc, int32(dt), dev.c())
	lib.AtsFree(sc)
	return s.result("full")
}

// Arange returns [start, start+1, ..., end-1].
func (s *Scope) Arange(start, end int64, dt DType, dev Device) *Tensor {
	if !s.ok("arange") {
		return nil
	}
	a, b := lib.AtsInt(start), lib.AtsInt(end)
	lib.AtgArangeStart(&s.out[0], a, b, int32(dt), dev.c())
	lib.AtsFree(a)
	lib.AtsFree(b)
	return s.result("arange")
}

// Randn returns standard-normal samples from libtorch's generator (see ManualSeed).
func (s *Scope) Randn(shape []int64, dt DType, dev Device) *Tensor {
	if !s.ok("randn") {
		return nil
	}
	lib.AtgRandn(&s.out[0], dimsOf(shape), len(shape), int32(dt), dev.c())
	return s.result("randn")
}

// Uniform returns samples from U[lo, hi) drawn from libtorch's generator.
func (s *Scope) Uniform(shape []int64, lo, hi float64, dt DType, dev Device) *Tensor {
	t := s.Zeros(shape, dt, dev)
	if t == nil {
		return nil
	}
	lib.AtgUniform_(&s.out[0], t.c, lo, hi)
	if err := lastError("uniform_"); err != nil {
		s.Fail(err)
		return nil
	}
	lib.AtFree(s.out[0]) // in-place ops return a second handle to self
	return t
}

// ZerosLike returns zeros with t's shape, dtype and device.
func (s *Scope) ZerosLike(t *Tensor) *Tensor {
	if !s.ok("zeros_like", t) {
		return nil
	}
	lib.AtgZerosLike(&s.out[0], t.c)
	return s.result("zeros_like")
}

// dimsOf makes a shape safe to hand to libtch, which reads dims[0] even for
// zero dimensions.
func dimsOf(shape []int64) []int64 {
	if len(shape) == 0 {
		return []int64{0}
	}
	return shape
}
