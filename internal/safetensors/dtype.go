package safetensors

import (
	"fmt"
	"math"
	"math/bits"
)

// DType is a safetensors element type, spelled as in the file header.
type DType string

// Element types. Every listed type can be read and written as raw bytes; the
// conversion helpers in this package cover F32, F16, BF16, F64 and I64.
const (
	BOOL   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
	F8E8M0 DType = "F8_E8M0"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	I64    DType = "I64"
	U64    DType = "U64"
	F64    DType = "F64"
	C64    DType = "C64"
)

// dtypeSizes holds the byte size of one element of each supported dtype.
// Sub-byte types (F4, F6_*) are deliberately absent: they are not supported.
var dtypeSizes = map[DType]int{
	BOOL: 1, U8: 1, I8: 1, F8E4M3: 1, F8E5M2: 1, F8E8M0: 1,
	I16: 2, U16: 2, F16: 2, BF16: 2,
	I32: 4, U32: 4, F32: 4,
	I64: 8, U64: 8, F64: 8, C64: 8,
}

// dtypeRanks orders dtypes as the reference implementation's Dtype enum
// does (by increasing alignment); its writer lays data out by descending rank.
var dtypeRanks = map[DType]int{
	BOOL: 1, U8: 2, I8: 3, F8E5M2: 4, F8E4M3: 5, F8E8M0: 6,
	I16: 7, U16: 8, F16: 9, BF16: 10,
	I32: 11, U32: 12, F32: 13,
	C64: 14, F64: 15, I64: 16, U64: 17,
}

// Size returns the number of bytes of one element, or 0 if d is not a
// supported dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is a supported dtype.
func (d DType) Valid() bool { return d.Size() > 0 }

// String returns the header spelling of d.
func (d DType) String() string { return string(d) }

// NumElements returns the number of elements of a tensor of the given shape
// (1 for a rank-0 shape). It fails with ErrShape on a negative dimension or
// when the count does not fit in an int64.
func NumElements(shape []int64) (int64, error) {
	n := uint64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: negative dimension %d at axis %d", ErrShape, d, i)
		}
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return 0, fmt.Errorf("%w: element count of shape %v overflows int64", ErrShape, shape)
		}
		n = lo
	}
	return int64(n), nil
}

// ByteSize returns the byte length of a tensor of dtype d and the given shape.
// It fails with ErrDtype for an unsupported dtype and ErrShape for an invalid
// or overflowing shape.
func ByteSize(d DType, shape []int64) (int64, error) {
	size := d.Size()
	if size == 0 {
		return 0, fmt.Errorf("%w: %q", ErrDtype, string(d))
	}
	n, err := NumElements(shape)
	if err != nil {
		return 0, err
	}
	if n > math.MaxInt64/int64(size) {
		return 0, fmt.Errorf("%w: byte size of %s%v overflows int64", ErrShape, d, shape)
	}
	return n * int64(size), nil
}
