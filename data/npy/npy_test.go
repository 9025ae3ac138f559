package npy

import (
	"bytes"
	"errors"
	"github.com/mose-llm/mose/internal/safetensors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadNumpyFixtures(t *testing.T) {
	f4 := []float32{-0.625, -0.375, -0.125, 0.125, 0.375, 0.625}
	tests := []struct {
		file  string
		dtype DType
		shape []int
		data  []float32
	}{
		{"f4_2x3.npy", Float32, []int{2, 3}, f4},
		{"f4_v2.npy", Float32, []int{2, 3}, f4},
		{"f2_4.npy", Float16, []int{4}, []float32{1, -2.5, 65504, safetensors.F16ToFloat32(1)}},
		{"f4_scalar.npy", Float32, []int{}, []float32{3.5}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			a, err := ReadFile(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != tc.dtype || !slices.Equal(a.Shape, tc.shape) || !slices.Equal(a.Data, tc.data) {
				t.Fatalf("got %v %v %v, want %v %v %v", a.DType, a.Shape, a.Data, tc.dtype, tc.shape, tc.data)
			}
			h, err := ReadFileHeader(filepath.Join("testdata", tc.file))
			if err != nil || !slices.Equal(h.Shape, tc.shape) || h.DType != tc.dtype {
				t.Fatalf("header: %+v, %v", h, err)
			}
		})
	}
}

func TestReadNaN(t *testing.T) {
	a, err := ReadFile("testdata/f4_nan.npy")
	if err != nil {
		t.Fatal(err)
	}
	if a.Data[0] != 1 || !math.IsNaN(float64(a.Data[1])) || !math.IsInf(float64(a.Data[2]), 1) {
		t.Fatalf("got %v", a.Data)
	}
}

func TestRejects(t *testing.T) {
	good, err := os.ReadFile("testdata/f4_2x3.npy")
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"float64", read("f8_2.npy"), ErrDType},
		{"big endian", read("f4_bigendian.npy"), ErrDType},
		{"fortran", read("f4_fortran.npy"), ErrFortranOrder},
		{"empty", nil, ErrFormat},
		{"bad magic", append([]byte("\x93NUMPZ"), good[6:]...), ErrFormat},
		{"truncated header", good[:40], ErrFormat},
		{"truncated data", good[:len(good)-1], ErrFormat},
		{"trailing data", append(slices.Clone(good), 0), ErrFormat},
		{"version 9", append(append([]byte{}, good[:6]...), append([]byte{9, 0}, good[8:]...)...), ErrFormat},
		{"missing key", hdr("{'descr': '<f4', 'shape': (2,), }"), ErrFormat},
		{"unknown key", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}"), ErrFormat},
		{"duplicate key", hdr("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}"), ErrFormat},
		{"bad shape", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (2,x), }"), ErrFormat},
		{"huge shape", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }"), ErrFormat},
		{"trailing text", hdr("{'descr': '<f4', 'fortran_order': False, 'shape': (), } x"), ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// hdr builds a version 1.0 file with the given header dict and no data.
func hdr(dict string) []byte {
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(dict)+1), byte((len(dict)+1)>>8))
	return append(append(b, dict...), '\n')
}

func TestWriteRoundTrip(t *testing.T) {
	tests := []*Array{
		{DType: Float32, Shape: []int{3, 2}, Data: []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}},
		{DType: Float16, Shape: []int{5}, Data: []float32{0, -1, 0.5, 65504, safetensors.F16ToFloat32(3)}},
		{DType: Float32, Shape: []int{0, 4}, Data: []float32{}},
	}
	for _, a := range tests {
		var buf bytes.Buffer
		if err := Write(&buf, a); err != nil {
			t.Fatal(err)
		}
		h, err := ParseHeader(buf.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if h.DataOffset%64 != 0 {
			t.Errorf("data offset %d not 64-aligned", h.DataOffset)
		}
		got, err := Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if got.DType != a.DType || !slices.Equal(got.Shape, a.Shape) || !slices.Equal(got.Data, a.Data) {
			t.Fatalf("round trip: got %+v, want %+v", got, a)
		}
	}
	if err := Write(&bytes.Buffer{}, &Array{DType: Float32, Shape: []int{3}, Data: []float32{1}}); !errors.Is(err, ErrFormat) {
		t.Fatalf("mismatched shape: %v", err)
	}
}

func TestDecodeInto(t *testing.T) {
	b, err := os.ReadFile("testdata/f2_4.npy")
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 4)
	if _, err := DecodeInto(dst, b); err != nil || dst[1] != -2.5 {
		t.Fatalf("got %v, %v", dst, err)
	}
	if _, err := DecodeInto(make([]float32, 3), b); !errors.Is(err, ErrFormat) {
		t.Fatalf("short destination: %v", err)
	}
}
