package safetensors

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// f16Value decodes half-precision bits with float64 arithmetic, independently
// of F16ToFloat32. 0x7c00 decodes to 65536, the "next value" after 65504.
func f16Value(h uint16) float64 {
	e, m := int(h>>10)&0x1f, float64(h&0x3ff)
	v := math.Ldexp(m, -24)
	if e != 0 {
		v = math.Ldexp(1024+m, e-25)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// bf16Value decodes bfloat16 bits with float64 arithmetic. 0x7f80 decodes
// to 2^128, the "next value" after the largest finite bfloat16.
func bf16Value(h uint16) float64 {
	e, m := int(h>>7)&0xff, float64(h&0x7f)
	v := math.Ldexp(m, -133)
	if e != 0 {
		v = math.Ldexp(128+m, e-134)
	}
	if h&0x8000 != 0 {
		v = -v
	}
	return v
}

// ladder is the sorted non-negative finite values of a 16-bit format plus
// its +Inf pattern, whose float64 value is the next power of two: the bit
// patterns 0..inf are in increasing order of value.
type ladder struct {
	vals []float64
	inf  uint16
}

func newLadder(inf uint16, value func(uint16) float64) ladder {
	l := ladder{inf: inf}
	for h := uint16(0); h <= inf; h++ {
		l.vals = append(l.vals, value(h))
	}
	return l
}

// nearest returns the bits of the value nearest to x, ties to the even bit
// pattern, computed by search over all values.
func (l ladder) nearest(x float32) uint16 {
	var sign uint16
	ax := float64(x)
	if math.Signbit(ax) {
		sign, ax = 0x8000, -ax
	}
	if math.IsInf(ax, 1) || ax >= l.vals[len(l.vals)-1] {
		return sign | l.inf
	}
	i := sort.SearchFloat64s(l.vals, ax) // first with vals[i] >= ax
	if l.vals[i] == ax {
		return sign | uint16(i)
	}
	lo, hi := i-1, i
	dlo, dhi := ax-l.vals[lo], l.vals[hi]-ax
	switch {
	case dlo < dhi:
		return sign | uint16(lo)
	case dhi < dlo:
		return sign | uint16(hi)
	case lo%2 == 0:
		return sign | uint16(lo)
	default:
		return sign | uint16(hi)
	}
}

// probes returns float32 values that exercise rounding for a format: every
// value, every midpoint between neighbours, one float32 step either side of
// it, and random non-NaN values over the whole float32 range.
func (l ladder) probes(rng *rand.Rand) []float32 {
	var out []float32
	for i, v := range l.vals {
		out = append(out, float32(v))
		if i+1 < len(l.vals) {
			mid := float32((v + l.vals[i+1]) / 2) // exact: needs few bits
			out = append(out, mid, math.Nextafter32(mid, 0), math.Nextafter32(mid, float32(math.Inf(1))))
		}
	}
	for len(out) < 2*len(l.vals)+200000 {
		if x := math.Float32frombits(rng.Uint32() & 0x7fffffff); !math.IsNaN(float64(x)) {
			out = append(out, x)
		}
	}
	out = append(out, math.MaxFloat32, math.SmallestNonzeroFloat32, float32(math.Inf(1)))
	n := len(out)
	for _, v := range out[:n] {
		out = append(out, -v)
	}
	return out
}

func TestF16DecodeAndRoundTripAllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := F16ToFloat32(h)
		exp := h >> 10 & 0x1f
		switch {
		case exp == 0x1f && h&0x3ff != 0:
			if !math.IsNaN(float64(f)) {
				t.Fatalf("F16ToFloat32(%#04x) = %v, want NaN", h, f)
			}
		case exp == 0x1f:
			if !math.IsInf(float64(f), 0) || math.Signbit(float64(f)) != (h&0x8000 != 0) {
				t.Fatalf("F16ToFloat32(%#04x) = %v, want signed Inf", h, f)
			}
		default:
			if want := f16Value(h); float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
				t.Fatalf("F16ToFloat32(%#04x) = %v, want %v", h, f, want)
			}
		}
		if back := Float32ToF16(f); back != h {
			t.Fatalf("Float32ToF16(F16ToFloat32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestBF16DecodeAndRoundTripAllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToFloat32(h)
		exp := h >> 7 & 0xff
		switch {
		case exp == 0xff && h&0x7f != 0:
			if !math.IsNaN(float64(f)) {
				t.Fatalf("BF16ToFloat32(%#04x) = %v, want NaN", h, f)
			}
		case exp == 0xff:
			if !math.IsInf(float64(f), 0) {
				t.Fatalf("BF16ToFloat32(%#04x) = %v, want Inf", h, f)
			}
		default:
			if want := bf16Value(h); float64(f) != want || math.Signbit(float64(f)) != math.Signbit(want) {
				t.Fatalf("BF16ToFloat32(%#04x) = %v, want %v", h, f, want)
			}
		}
		if back := Float32ToBF16(f); back != h {
			t.Fatalf("Float32ToBF16(BF16ToFloat32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestFloat32ToF16RoundsToNearestEven(t *testing.T) {
	l := newLadder(0x7c00, f16Value)
	for _, x := range l.probes(rand.New(rand.NewPCG(1, 2))) {
		if got, want := Float32ToF16(x), l.nearest(x); got != want {
			t.Fatalf("Float32ToF16(%g [%#08x]) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
}

func TestFloat32ToBF16RoundsToNearestEven(t *testing.T) {
	l := newLadder(0x7f80, bf16Value)
	for _, x := range l.probes(rand.New(rand.NewPCG(3, 4))) {
		if got, want := Float32ToBF16(x), l.nearest(x); got != want {
			t.Fatalf("Float32ToBF16(%g [%#08x]) = %#04x, want %#04x", x, math.Float32bits(x), got, want)
		}
	}
}

func TestKnownConversions(t *testing.T) {
	tests := []struct {
		x        float64
		f16, b16 uint16
	}{
		{0, 0x0000, 0x0000},
		{math.Copysign(0, -1), 0x8000, 0x8000},
		{1, 0x3c00, 0x3f80},
		{-2, 0xc000, 0xc000},
		{0.1, 0x2e66, 0x3dcd},
		{math.Pi, 0x4248, 0x4049},
		{65504, 0x7bff, 0x4780},              // bf16: 0x477fe000 rounds up
		{65519, 0x7bff, 0x4780},              // f16: below the midpoint to Inf
		{65520, 0x7c00, 0x4780},              // f16: tie with Inf, rounds to even (Inf)
		{math.Ldexp(1, -24), 0x0001, 0x3380}, // smallest f16 subnormal
		{math.Ldexp(1, -25), 0x0000, 0x3300}, // tie between 0 and 2^-24: even is 0
		{math.Ldexp(3, -26), 0x0001, 0x3340},
		{math.Ldexp(3, -25), 0x0002, 0x33c0},    // tie 1 vs 2 subnormal steps: even is 2
		{math.Ldexp(1, -14), 0x0400, 0x3880},    // smallest f16 normal
		{math.Ldexp(1023, -24), 0x03ff, 0x3880}, // largest f16 subnormal; bf16 rounds up
		{1 + math.Ldexp(1, -8), 0x3c04, 0x3f80}, // bf16 tie: even is 1.0
		{1 + math.Ldexp(3, -8), 0x3c0c, 0x3f82}, // bf16 tie: even is up
		{math.MaxFloat32, 0x7c00, 0x7f80},
		{math.Inf(-1), 0xfc00, 0xff80},
	}
	for _, tt := range tests {
		x := float32(tt.x)
		if got := Float32ToF16(x); got != tt.f16 {
			t.Errorf("Float32ToF16(%g) = %#04x, want %#04x", tt.x, got, tt.f16)
		}
		if got := Float32ToBF16(x); got != tt.b16 {
			t.Errorf("Float32ToBF16(%g) = %#04x, want %#04x", tt.x, got, tt.b16)
		}
	}
}

func TestNaNConversions(t *testing.T) {
	nans := []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0x7fbfffff, 0xff800001, 0x7fffffff}
	for _, bits := range nans {
		x := math.Float32frombits(bits)
		h := Float32ToF16(x)
		if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
			t.Errorf("Float32ToF16(NaN %#08x) = %#04x, not a NaN", bits, h)
		}
		if (h&0x8000 != 0) != (bits>>31 == 1) {
			t.Errorf("Float32ToF16(NaN %#08x) = %#04x lost the sign", bits, h)
		}
		b := Float32ToBF16(x)
		if b&0x7f80 != 0x7f80 || b&0x7f == 0 {
			t.Errorf("Float32ToBF16(NaN %#08x) = %#04x, not a NaN", bits, b)
		}
		if (b&0x8000 != 0) != (bits>>31 == 1) {
			t.Errorf("Float32ToBF16(NaN %#08x) = %#04x lost the sign", bits, b)
		}
	}
}

func TestEncodeDecodeFloat32s(t *testing.T) {
	src := []float32{0, -1.5, 3.25, 65504, float32(math.Inf(-1)), 1e-7}
	for _, dt := range []DType{F32, F16, BF16, F64} {
		buf := make([]byte, len(src)*dt.Size())
		if err := EncodeFloat32s(buf, src, dt); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		got := make([]float32, len(src))
		if err := DecodeFloat32s(got, buf, dt); err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		for i, x := range src {
			var want float32
			switch dt {
			case F16:
				want = F16ToFloat32(Float32ToF16(x))
			case BF16:
				want = BF16ToFloat32(Float32ToBF16(x))
			default:
				want = x
			}
			if got[i] != want {
				t.Errorf("%s: element %d: got %v, want %v", dt, i, got[i], want)
			}
		}
	}
	// Little-endian layout, checked byte by byte.
	buf := make([]byte, 2)
	if err := EncodeFloat32s(buf, []float32{1}, BF16); err != nil || buf[0] != 0x80 || buf[1] != 0x3f {
		t.Errorf("BF16 1.0 encoded as % x (%v), want 80 3f", buf, err)
	}
	if err := DecodeFloat32s(make([]float32, 2), make([]byte, 6), F16); err == nil {
		t.Error("DecodeFloat32s accepted 6 bytes for 2 F16 elements")
	}
	wantErr(t, DecodeFloat32s(make([]float32, 1), make([]byte, 8), I64), ErrDtype)
	wantErr(t, EncodeFloat32s(make([]byte, 3), []float32{1}, F32), ErrSize)
}

func TestSliceHelpers(t *testing.T) {
	f := []float32{1, -2.5, float32(math.Inf(1))}
	b := Float32sToBytes(f)
	if len(b) != 12 || b[4] != 0x00 || b[7] != 0xc0 { // -2.5 = 0xc0200000
		t.Fatalf("Float32sToBytes = % x", b)
	}
	back, err := BytesToFloat32s(b)
	if err != nil || len(back) != 3 || back[1] != -2.5 || !math.IsInf(float64(back[2]), 1) {
		t.Fatalf("BytesToFloat32s = %v, %v", back, err)
	}
	_, err = BytesToFloat32s(b[:5])
	wantErr(t, err, ErrSize)

	v := []int64{0, -1, math.MaxInt64, math.MinInt64, 258}
	ib := Int64sToBytes(v)
	if ib[8] != 0xff || ib[32] != 2 || ib[33] != 1 {
		t.Fatalf("Int64sToBytes = % x", ib)
	}
	iback, err := BytesToInt64s(ib)
	if err != nil || len(iback) != len(v) {
		t.Fatalf("BytesToInt64s = %v, %v", iback, err)
	}
	for i := range v {
		if iback[i] != v[i] {
			t.Errorf("element %d: got %d, want %d", i, iback[i], v[i])
		}
	}
	_, err = BytesToInt64s(ib[:7])
	wantErr(t, err, ErrSize)
}
