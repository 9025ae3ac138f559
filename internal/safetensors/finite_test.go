package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckFinite(t *testing.T) {
	f32 := func(v ...float32) []byte {
		b := make([]byte, 0, 4*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}
	u16 := func(v ...uint16) []byte {
		b := make([]byte, 0, 2*len(v))
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	big := make([]float32, finiteChunk/4+10) // spans two chunks
	cases := []struct {
		name   string
		ts     []Tensor
		bad    string // tensor named in the error, "" if clean
		elemAt string
	}{
		{"clean", []Tensor{{"a", F32, []int64{3}, f32(1, -2, 3)}, {"h", F16, []int64{2}, u16(0x3c00, 0xfbff)}, {"i", I64, []int64{1}, make([]byte, 8)}}, "", ""},
		{"f32 nan", []Tensor{{"a", F32, []int64{3}, f32(1, float32(math.NaN()), 3)}}, "a", "element 1"},
		{"f32 inf", []Tensor{{"b", F32, []int64{2}, f32(float32(math.Inf(-1)), 0)}}, "b", "element 0"},
		{"f16 inf", []Tensor{{"h", F16, []int64{3}, u16(0, 0, 0x7c00)}}, "h", "element 2"},
		{"bf16 nan", []Tensor{{"w", BF16, []int64{2}, u16(0x3f80, 0x7fc1)}}, "w", "element 1"},
		{"second chunk", []Tensor{{"big", F32, []int64{int64(len(big))}, func() []byte {
			v := append([]float32{}, big...)
			v[len(v)-3] = float32(math.NaN())
			return f32(v...)
		}()}}, "big", "element " + itoa(len(big)-3)},
	}
	for _, c := range cases {
		p := filepath.Join(t.TempDir(), "model.safetensors")
		if err := WriteFile(p, c.ts, nil); err != nil {
			t.Fatal(err)
		}
		ck, err := OpenDir(filepath.Dir(p))
		if err != nil {
			t.Fatal(err)
		}
		err = ck.CheckFinite(2)
		ck.Close()
		if c.bad == "" {
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), `"`+c.bad+`"`) || !strings.Contains(err.Error(), c.elemAt) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: got %v", c.name, err)
		}
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

// BenchmarkCheckFinite: scan throughput of a 64 MiB BF16 + F32 checkpoint
// (b.SetBytes: MB/s is the frozen-weight preflight's speed from page cache).
func BenchmarkCheckFinite(b *testing.B) {
	p := filepath.Join(b.TempDir(), "model.safetensors")
	ts := []Tensor{{"w", BF16, []int64{8192, 2048}, make([]byte, 8192*2048*2)}, {"v", F32, []int64{4096, 2048}, make([]byte, 4096*2048*4)}}
	if err := WriteFile(p, ts, nil); err != nil {
		b.Fatal(err)
	}
	ck, err := OpenDir(filepath.Dir(p))
	if err != nil {
		b.Fatal(err)
	}
	defer ck.Close()
	b.SetBytes(ck.TotalSize())
	for b.Loop() {
		if err := ck.CheckFinite(0); err != nil {
			b.Fatal(err)
		}
	}
}
