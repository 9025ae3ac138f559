// Package npy reads and writes NumPy .npy arrays of float32 or float16
// little-endian values, the format of mose's pre-extracted feature files.
//
// Only what mose needs is supported: format versions 1.0, 2.0 and 3.0, the
// dtypes '<f4' and '<f2', C order (fortran_order False) and any rank. Values
// are always returned as float32; float16 files are widened exactly.
package npy

import (
	"fmt"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"math"
	"strconv"
)

// Sentinel errors; every error returned by this package wraps one of them.
var (
	// ErrFormat reports a file that is not a well-formed .npy array.
	ErrFormat = inputerr.New("malformed npy file")
	// ErrDType reports an element type other than little-endian float32/float16.
	ErrDType = inputerr.New("unsupported npy dtype")
	// ErrFortranOrder reports an array stored in Fortran (column-major) order.
	ErrFortranOrder = inputerr.New("npy fortran_order is not supported")
)

// DType is an element type of a .npy file.
type DType uint8

// Supported element types.
const (
	Float32 DType = iota + 1 // '<f4'
	Float16                  // '<f2'
)

// String returns the numpy descr of the type.
func (d DType) String() string {
	switch d {
	case Float32:
		return "<f4"
	case Float16:
		return "<f2"
	}
	return "invalid"
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case Float32:
		return 4
	case Float16:
		return 2
	}
	return 0
}

// Header is the decoded header of a .npy file.
type Header struct {
	DType DType
	Shape []int
	// DataOffset is the byte offset of the first element in the file.
	DataOffset int
}

// Len is the number of elements the header describes (1 for a scalar).
func (h Header) Len() int {
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	return n
}

// DataSize is the number of data bytes following the header.
func (h Header) DataSize() int { return h.Len() * h.DType.Size() }

// Array is a decoded array: its shape, and its values in C order widened to float32.
type Array struct {
	DType DType // element type on disk
	Shape []int
	Data  []float32
}

// maxElements bounds the element count a header may claim (16 Gi elements), so
// that products of dimensions cannot overflow and absurd headers fail early.
const maxElements = 1 << 34

var magic = []byte("\x93NUMPY")

// ParseHeader decodes the header at the start of b. b must hold at least the
// whole header; the data may be absent.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < 10 || string(b[:6]) != string(magic) {
		return Header{}, fmt.Errorf("%w: bad magic", ErrFormat)
	}
	major := b[6]
	var hlen, start int
	switch major {
	case 1:
		hlen, start = int(b[8])|int(b[9])<<8, 10
	case 2, 3:
		if len(b) < 12 {
			return Header{}, fmt.Errorf("%w: truncated header", ErrFormat)
		}
		n := uint32(b[8]) | uint32(b[9])<<8 | uint32(b[10])<<16 | uint32(b[11])<<24
		if n > 1<<24 {
			return Header{}, fmt.Errorf("%w: header length %d too large", ErrFormat, n)
		}
		hlen, start = int(n), 12
	default:
		return Header{}, fmt.Errorf("%w: unsupported format version %d.%d", ErrFormat, major, b[7])
	}
	if len(b) < start+hlen {
		return Header{}, fmt.Errorf("%w: truncated header (want %d bytes, have %d)", ErrFormat, start+hlen, len(b))
	}
	d, err := parseDict(string(b[start : start+hlen]))
	if err != nil {
		return Header{}, err
	}
	h := Header{DataOffset: start + hlen}
	switch d.descr {
	case "<f4":
		h.DType = Float32
	case "<f2":
		h.DType = Float16
	default:
		return Header{}, fmt.Errorf("%w: %q (want '<f4' or '<f2')", ErrDType, d.descr)
	}
	if d.fortran {
		return Header{}, ErrFortranOrder
	}
	n := 1
	for _, s := range d.shape {
		if s < 0 || s > maxElements {
			return Header{}, fmt.Errorf("%w: bad dimension %d", ErrFormat, s)
		}
		if s > 0 && n > maxElements/s {
			return Header{}, fmt.Errorf("%w: shape %v too large", ErrFormat, d.shape)
		}
		n *= s
	}
	h.Shape = d.shape
	return h, nil
}

// Decode decodes a whole .npy file held in b.
func Decode(b []byte) (*Array, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if err := checkDataSize(h, len(b)); err != nil {
		return nil, err
	}
	a := &Array{DType: h.DType, Shape: h.Shape, Data: make([]float32, h.Len())}
	decodeValues(a.Data, h.DType, b[h.DataOffset:])
	return a, nil
}

// DecodeInto decodes the values of the .npy file in b into dst, which must have
// exactly as many elements as the header describes, and returns the header.
// It lets callers decode straight into a batch buffer.
func DecodeInto(dst []float32, b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Header{}, err
	}
	if err := checkDataSize(h, len(b)); err != nil {
		return Header{}, err
	}
	if len(dst) != h.Len() {
		return Header{}, fmt.Errorf("%w: destination holds %d values, file has %d", ErrFormat, len(dst), h.Len())
	}
	decodeValues(dst, h.DType, b[h.DataOffset:])
	return h, nil
}

func checkDataSize(h Header, total int) error {
	if have, want := total-h.DataOffset, h.DataSize(); have != want {
		return fmt.Errorf("%w: %d data bytes for shape %v %s, want %d", ErrFormat, have, h.Shape, h.DType, want)
	}
	return nil
}

func decodeValues(dst []float32, t DType, b []byte) {
	switch t {
	case Float32:
		for i := range dst {
			p := b[4*i : 4*i+4 : 4*i+4]
			dst[i] = math.Float32frombits(uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24)
		}
	case Float16:
		for i := range dst {
			dst[i] = safetensors.F16ToFloat32(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
		}
	}
}

// ShapeString formats a shape like numpy does: (3, 4), (5,), ().
func ShapeString(shape []int) string {
	s := "("
	for i, d := range shape {
		if i > 0 {
			s += ", "
		}
		s += strconv.Itoa(d)
	}
	if len(shape) == 1 {
		s += ","
	}
	return s + ")"
}
