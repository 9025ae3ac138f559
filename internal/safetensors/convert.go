package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"
)

// BF16ToFloat32 converts bfloat16 bits to a float32 (exact).
func BF16ToFloat32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// Float32ToBF16 converts f to bfloat16 bits, rounding to nearest with ties to
// even. Overflow gives ±Inf; NaN stays NaN (sign and top payload bits kept,
// made quiet if the truncated payload would be zero).
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN
		h := uint16(b >> 16)
		if h&0x7f == 0 {
			h |= 0x40
		}
		return h
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F16ToFloat32 converts IEEE 754 half-precision bits to a float32 (exact,
// subnormals included; NaN payloads are kept).
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0: // normal
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	case mant == 0: // ±0
		return math.Float32frombits(sign)
	}
	// Subnormal: mant·2^-24. Normalise so the leading 1 is at bit 10.
	e := uint32(127 - 15 + 1)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
}

// Float32ToF16 converts f to IEEE 754 half-precision bits, rounding to
// nearest with ties to even, including into and out of the subnormal range.
// Magnitudes that round above 65504 give ±Inf; NaN stays NaN (sign and top
// payload bits kept, made quiet if the truncated payload would be zero).
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff
	if exp == 0xff { // Inf or NaN
		if mant == 0 {
			return sign | 0x7c00
		}
		m := uint16(mant >> 13)
		if m == 0 {
			m = 0x200
		}
		return sign | 0x7c00 | m
	}
	e := exp - 127 + 15 // biased half exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal half (or zero): value = m·2^-24 with m = sig·2^(e-14)
		// where sig is the 24-bit significand; shift by 14-e ≥ 14 bits.
		if e < -10 {
			return sign // below half the smallest subnormal: rounds to 0
		}
		sig := mant | 0x800000
		shift := uint32(14 - e)
		h := sig >> shift
		rem := sig & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++ // may carry into the smallest normal, which is correct
		}
		return sign | uint16(h)
	}
	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, up to Inf, which is correct
	}
	return sign | uint16(h)
}

// DecodeFloat32s converts little-endian elements of dtype dt (F32, F16, BF16
// or F64) from src into dst, which must hold exactly len(src)/dt.Size()
// elements. F64 values are rounded to float32.
func DecodeFloat32s(dst []float32, src []byte, dt DType) error {
	if err := checkConvert(len(dst), len(src), dt); err != nil {
		return err
	}
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(le.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(le.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	}
	return nil
}

// EncodeFloat32s converts src to little-endian elements of dtype dt (F32,
// F16, BF16 or F64) in dst, which must hold exactly len(src)·dt.Size() bytes.
// F16 and BF16 round to nearest, ties to even.
func EncodeFloat32s(dst []byte, src []float32, dt DType) error {
	if err := checkConvert(len(src), len(dst), dt); err != nil {
		return err
	}
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i, v := range src {
			le.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], Float32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			le.PutUint16(dst[2*i:], Float32ToBF16(v))
		}
	case F64:
		for i, v := range src {
			le.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	}
	return nil
}

// checkConvert checks that dt is a float dtype and that n elements of it
// take exactly nbytes bytes.
func checkConvert(n, nbytes int, dt DType) error {
	switch dt {
	case F32, F16, BF16, F64:
	default:
		return fmt.Errorf("%w: %q is not a float dtype convertible to float32", ErrDtype, string(dt))
	}
	if nbytes%dt.Size() != 0 || nbytes/dt.Size() != n {
		return fmt.Errorf("%w: %d bytes of %s for %d elements", ErrSize, nbytes, dt, n)
	}
	return nil
}

// Float32sToBytes returns v as little-endian F32 bytes.
func Float32sToBytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

// BytesToFloat32s decodes little-endian F32 bytes; len(b) must be a
// multiple of 4.
func BytesToFloat32s(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of F32 elements", ErrSize, len(b))
	}
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v, nil
}

// Int64sToBytes returns v as little-endian I64 bytes.
func Int64sToBytes(v []int64) []byte {
	b := make([]byte, 8*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
	}
	return b
}

// BytesToInt64s decodes little-endian I64 bytes; len(b) must be a multiple
// of 8.
func BytesToInt64s(b []byte) ([]int64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of I64 elements", ErrSize, len(b))
	}
	v := make([]int64, len(b)/8)
	for i := range v {
		v[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return v, nil
}
