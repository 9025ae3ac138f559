package torch

import (
	"fmt"
	"strconv"
	"strings"
)

// DType is a libtorch scalar type (c10::ScalarType numbering).
type DType int32

// The scalar types mose uses.
const (
	Uint8    DType = 0
	Int8     DType = 1
	Int16    DType = 2
	Int32    DType = 3
	Int64    DType = 4
	Float16  DType = 5
	Float32  DType = 6
	Float64  DType = 7
	Bool     DType = 11
	BFloat16 DType = 15
)

var dtypeInfo = map[DType]struct {
	name string
	size int
}{
	Uint8: {"uint8", 1}, Int8: {"int8", 1}, Int16: {"int16", 2}, Int32: {"int32", 4},
	Int64: {"int64", 8}, Float16: {"float16", 2}, Float32: {"float32", 4},
	Float64: {"float64", 8}, Bool: {"bool", 1}, BFloat16: {"bfloat16", 2},
}

// String returns the PyTorch name of d ("float32", "bfloat16", ...).
func (d DType) String() string {
	if i, ok := dtypeInfo[d]; ok {
		return i.name
	}
	return "dtype(" + strconv.Itoa(int(d)) + ")"
}

// Size is the size of one element in bytes, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeInfo[d].size }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	return d == Float16 || d == Float32 || d == Float64 || d == BFloat16
}

// ParseDType accepts PyTorch names and common aliases: float32/fp32/f32,
// bfloat16/bf16, float16/fp16/half, float64, int64, int32, bool, uint8, int8.
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "torch.")) {
	case "float32", "fp32", "f32", "float":
		return Float32, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "float16", "fp16", "f16", "half":
		return Float16, nil
	case "float64", "fp64", "f64", "double":
		return Float64, nil
	case "int64", "long", "i64":
		return Int64, nil
	case "int32", "int", "i32":
		return Int32, nil
	case "int16", "i16":
		return Int16, nil
	case "int8", "i8":
		return Int8, nil
	case "uint8", "u8":
		return Uint8, nil
	case "bool":
		return Bool, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want float32, bfloat16, float16, float64, int64, int32, bool, ...)", s)
}

// Device is where a tensor lives. The zero value is the CPU.
type Device int32

// CPU is the host device.
const CPU Device = 0

// CUDA returns the CUDA device with the given index.
func CUDA(index int) Device { return Device(index + 1) }

// IsCUDA reports whether d is a CUDA device.
func (d Device) IsCUDA() bool { return d > 0 }

// Index is the CUDA device index, or -1 for the CPU.
func (d Device) Index() int { return int(d) - 1 }

// c is libtch's numbering: -1 for the CPU, the index for CUDA.
func (d Device) c() int32 { return int32(d) - 1 }

// String returns "cpu" or "cuda:N".
func (d Device) String() string {
	if d.IsCUDA() {
		return "cuda:" + strconv.Itoa(d.Index())
	}
	return "cpu"
}

// ParseDevice accepts "cpu", "cuda" (device 0) and "cuda:N".
func ParseDevice(s string) (Device, error) {
	switch {
	case s == "cpu":
		return CPU, nil
	case s == "cuda":
		return CUDA(0), nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(s[len("cuda:"):])
		if err == nil && n >= 0 {
			return CUDA(n), nil
		}
	}
	return CPU, fmt.Errorf("unknown device %q (want cpu, cuda or cuda:N)", s)
}
