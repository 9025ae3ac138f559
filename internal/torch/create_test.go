package torch

import (
	"math"
	"testing"
)

func TestCreation(t *testing.T) {
	inTorch(t, func(s *Scope) {
		expectND(t, "zeros", s.Zeros([]int64{2, 2}, Float32, CPU), nd{[]int64{2, 2}, make([]float64, 4)}, 0)
		expectND(t, "ones", s.Ones([]int64{3}, Float64, CPU), nd{[]int64{3}, []float64{1, 1, 1}}, 0)
		expectND(t, "full", s.Full([]int64{2}, -1.5, Float32, CPU), nd{[]int64{2}, []float64{-1.5, -1.5}}, 0)
		expectND(t, "arange", s.Arange(2, 6, Int64, CPU), nd{[]int64{4}, []float64{2, 3, 4, 5}}, 0)
		expectND(t, "zeros_like", s.ZerosLike(s.Ones([]int64{2, 3}, Float32, CPU)), nd{[]int64{2, 3}, make([]float64, 6)}, 0)
		expectND(t, "scalar", s.FromFloat32([]float32{4.5}), nd{[]int64{}, []float64{4.5}}, 0)
		expectND(t, "empty", s.FromFloat32(nil, 0, 3), nd{[]int64{0, 3}, nil}, 0)

		i64, err := s.FromInt64([]int64{-3, 1 << 40, 7}, 3).Int64s()
		if err != nil || i64[0] != -3 || i64[1] != 1<<40 || i64[2] != 7 {
			t.Errorf("int64 round trip: %v %v", i64, err)
		}
		bs, err := s.FromBool([]bool{true, false, true}, 3).Bools()
		if err != nil || !bs[0] || bs[1] || !bs[2] {
			t.Errorf("bool round trip: %v %v", bs, err)
		}
		f64, err := s.FromFloat64([]float64{math.Pi}, 1).Float64s()
		if err != nil || f64[0] != math.Pi {
			t.Errorf("float64 round trip: %v %v", f64, err)
		}
	})
}

// bf16Bits rounds a float32 to bfloat16 (round to nearest even), independently
// of libtorch.
func bf16Bits(f float32) uint16 {
	b := math.Float32bits(f)
	return uint16((b + 0x7FFF + (b>>16)&1) >> 16)
}

func TestDTypes(t *testing.T) {
	vals := []float32{1, -2.5, 3.140625, 1.00390625, 1.01171875, 65504, 1e-3, 300.7}
	inTorch(t, func(s *Scope) {
		x := s.FromFloat32(vals, int64(len(vals)))
		bf := s.To(x, BFloat16)
		if bf.DType() != BFloat16 || bf.DType().Size() != 2 {
			t.Fatalf("to bfloat16: dtype %v", bf.DType())
		}
		raw, err := bf.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			got := uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
			if want := bf16Bits(v); got != want {
				t.Errorf("bf16(%v) = %#04x, want %#04x", v, got, want)
			}
		}
		back := s.FromBytes(raw, BFloat16, int64(len(vals)))
		f, err := back.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			want := math.Float32frombits(uint32(bf16Bits(v)) << 16)
			if f[i] != want {
				t.Errorf("bf16 bytes round trip %d: %v, want %v", i, f[i], want)
			}
		}
		// float16 holds these values exactly.
		exact := []float32{1, -2.5, 0.125, 65504, 1000.5}
		h := s.To(s.FromFloat32(exact, 5), Float16)
		hf, err := h.Float32s()
		if err != nil || h.DType() != Float16 {
			t.Fatalf("float16: %v %v", h.DType(), err)
		}
		for i := range exact {
			if hf[i] != exact[i] {
				t.Errorf("f16 round trip %v -> %v", exact[i], hf[i])
			}
		}
		for _, dt := range []DType{Int64, Int32, Bool, Float64, Uint8} {
			if got := s.To(x, dt).DType(); got != dt {
				t.Errorf("To(%v) gave %v", dt, got)
			}
		}
	})
}

func TestParse(t *testing.T) {
	for in, want := range map[string]DType{"bf16": BFloat16, "float32": Float32, "torch.float16": Float16, "int64": Int64} {
		if got, err := ParseDType(in); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDType("float8"); err == nil {
		t.Error("ParseDType(float8) should fail")
	}
	for in, want := range map[string]Device{"cpu": CPU, "cuda": CUDA(0), "cuda:3": CUDA(3)} {
		if got, err := ParseDevice(in); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"gpu", "cuda:-1", "cuda:x"} {
		if _, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) should fail", bad)
		}
	}
	if CUDA(1).String() != "cuda:1" || CPU.String() != "cpu" {
		t.Error("Device.String")
	}
}

func TestRandomUnderSeed(t *testing.T) {
	draw := func(seed int64) (n, u []float32) {
		inTorch(t, func(s *Scope) {
			if err := ManualSeed(seed); err != nil {
				t.Fatal(err)
			}
			var err error
			if n, err = s.Randn([]int64{4000}, Float32, CPU).Float32s(); err != nil {
				t.Fatal(err)
			}
			if u, err = s.Uniform([]int64{4000}, -1, 3, Float32, CPU).Float32s(); err != nil {
				t.Fatal(err)
			}
		})
		return n, u
	}
	n1, u1 := draw(11)
	n2, u2 := draw(11)
	n3, _ := draw(12)
	for i := range n1 {
		if n1[i] != n2[i] || u1[i] != u2[i] {
			t.Fatalf("same seed, different draws at %d", i)
		}
	}
	differ := false
	for i := range n1 {
		differ = differ || n1[i] != n3[i]
	}
	if !differ {
		t.Error("different seeds gave identical draws")
	}
	var mean, sq float64
	for _, v := range n1 {
		mean += float64(v)
		sq += float64(v) * float64(v)
	}
	mean /= 4000
	std := math.Sqrt(sq/4000 - mean*mean)
	if math.Abs(mean) > 0.08 || math.Abs(std-1) > 0.08 {
		t.Errorf("randn mean %.3f std %.3f", mean, std)
	}
	for _, v := range u1 {
		if v < -1 || v >= 3 {
			t.Fatalf("uniform sample %v outside [-1, 3)", v)
		}
	}
}

func TestProcessSettings(t *testing.T) {
	err := Run(func() error {
		prev := Threads()
		if err := SetThreads(1); err != nil {
			return err
		}
		if got := Threads(); got != 1 {
			t.Errorf("Threads() = %d after SetThreads(1)", got)
		}
		if err := SetThreads(prev); err != nil {
			return err
		}
		if err := SetThreads(0); err == nil {
			t.Error("SetThreads(0) should fail")
		}
		if n := CUDADeviceCount(); CUDAAvailable() != (n > 0) {
			t.Errorf("CUDAAvailable %v but %d devices", CUDAAvailable(), n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeviceOfCPUTensor(t *testing.T) {
	inTorch(t, func(s *Scope) {
		for range 50 { // the upper half of a misread C int would be garbage
			if d := s.Zeros([]int64{1}, Float32, CPU).Device(); d != CPU {
				t.Fatalf("Device() = %v, want cpu", d)
			}
		}
	})
}
