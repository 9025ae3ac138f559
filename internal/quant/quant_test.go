package quant

import (
	"bytes"
	"errors"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// The fixtures come from torchao 0.18.0 on the CPU
// (scripts/fixtures/make_quant_fixtures.py --only tensors).

// part is one tensor of a quantized form, read back as raw bytes.
type part struct {
	dt    torch.DType
	shape []int64
	data  []byte
}

func snapshot(t *torch.Tensor) (part, error) {
	b, err := t.Bytes()
	return part{t.DType(), t.Shape(), b}, err
}

func (p part) equal(q part) bool {
	return p.dt == q.dt && slices.Equal(p.shape, q.shape) && bytes.Equal(p.data, q.data)
}

// quantizeFixture quantizes every weight of the fixture file (mutate, when
// set, changes one element of each first) and compares each part and the
// dequantized weight with torchao's; it returns the names that differ.
func quantizeFixture(t *testing.T, k Kind, mutate bool) []string {
	t.Helper()
	f, err := safetensors.Open(filepath.Join("testdata", string(k)+".safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var differ []string
	err = torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		r := ckpt.NewReader(f)
		for _, name := range f.Names() {
			if strings.Contains(name, ".") {
				continue
			}
			info, _ := f.Info(name)
			dt, err := ckpt.TorchDType(info.DType)
			if err != nil {
				return err
			}
			w := r.Read(s, name, dt, torch.CPU)
			if mutate {
				w = s.Add(s.Reshape(w, w.Numel()), s.MulScalar(s.Reshape(s.OneHot(s.FromInt64([]int64{5}, 1), w.Numel()), w.Numel()), 1e-2))
				w = s.To(s.Reshape(w, info.Shape...), dt)
			}
			q := Quantize(s, k, name, w)
			if err := s.Err(); err != nil {
				return err
			}
			got := map[string]*torch.Tensor{"dequantized": q.Dequantize(s)}
			for _, p := range q.Parts() {
				got[p.Name] = p.T
			}
			if err := s.Err(); err != nil {
				return err
			}
			for pn, gt := range got {
				want, err := snapshot(r.Read(s, name+"."+pn, mustDType(f, name+"."+pn), torch.CPU))
				if err != nil {
					return err
				}
				have, err := snapshot(gt)
				if err != nil {
					return err
				}
				if !have.equal(want) {
					differ = append(differ, name+"."+pn)
				}
			}
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(differ)
	return differ
}

func mustDType(f *safetensors.File, name string) torch.DType {
	info, err := f.Info(name)
	if err != nil {
		return torch.Float32
	}
	dt, _ := ckpt.TorchDType(info.DType)
	return dt
}

// TestMatchesTorchao: codes, scales, factors, mean and the dequantized weight
// equal torchao's bit for bit (NF4: fp32 and bf16, 1-D and 2-D, one and
// several scaler groups; int8: fp32 and bf16, a zero row); a weight changed
// in one element gives different parts, so the comparison can fail.
func TestMatchesTorchao(t *testing.T) {
	for _, k := range []Kind{NF4, Int8} {
		t.Run(string(k), func(t *testing.T) {
			if d := quantizeFixture(t, k, false); len(d) > 0 {
				t.Errorf("differ from torchao: %v", d)
			}
			if d := quantizeFixture(t, k, true); len(d) == 0 {
				t.Errorf("a changed weight still gives torchao's parts: the comparison cannot fail")
			}
		})
	}
}

func TestParseKind(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Kind
		err  bool
	}{{"", None, false}, {"none", None, false}, {"nf4", NF4, false}, {"int8", Int8, false},
		{"nf3", None, true}, {"NF4", None, true}, {"int4", None, true}} {
		k, err := ParseKind(c.in)
		if (err != nil) != c.err || k != c.want {
			t.Errorf("ParseKind(%q) = %q, %v", c.in, k, err)
		}
		if c.err && !errors.Is(err, ErrKind) {
			t.Errorf("ParseKind(%q): %v is not ErrKind", c.in, err)
		}
	}
}

func TestCheckShape(t *testing.T) {
	for _, c := range []struct {
		k     Kind
		shape []int64
		ok    bool
	}{
		{NF4, []int64{256, 64}, true},
		{NF4, []int64{4096, 11008}, true},      // LLaMA-2-7B down_proj
		{NF4, []int64{576, 576}, false},        // SmolLM2
		{NF4, []int64{64, 128}, false},         // the tiny preset's k_proj
		{NF4, []int64{2, 128, 64}, false},      // 3-D
		{Int8, []int64{576, 576}, true},        //
		{Int8, []int64{576}, false},            // one scale per row needs rows
		{None, []int64{3, 5}, true},            //
		{Kind("nf3"), []int64{256, 64}, false}, //
	} {
		err := CheckShape(c.k, "model.layers.0.self_attn.k_proj.weight", c.shape)
		if (err == nil) != c.ok {
			t.Errorf("CheckShape(%s, %v) = %v", c.k, c.shape, err)
		}
		if err != nil && c.k == NF4 && !strings.Contains(err.Error(), "k_proj") {
			t.Errorf("the error does not name the tensor: %v", err)
		}
	}
}

func TestStoredBytes(t *testing.T) {
	n, out := int64(4096*4096), int64(4096)
	for _, c := range []struct {
		k    Kind
		want int64
	}{
		{None, n * 2},
		{Int8, n + out*4},
		{NF4, n/2 + n/64 + n/16384*2 + 2 + 1024},
	} {
		if got := StoredBytes(c.k, n, out, 2); got != c.want {
			t.Errorf("%s: %d bytes, want %d", c.k, got, c.want)
		}
	}
	// NF4 is about 4.13 bits a weight
	if bits := float64(StoredBytes(NF4, n, out, 2)) * 8 / float64(n); bits < 4.1 || bits > 4.2 {
		t.Errorf("nf4: %.3f bits a weight", bits)
	}
}

// TestLinear: Weight.Linear (the autograd function that keeps the quantized
// parts) gives the output of Linear(x, Dequantize(), bias) and the input
// gradient of autograd through it, bit for bit, with and without a bias, in
// float32 and bfloat16; a perturbed weight gives other outputs.
func TestLinear(t *testing.T) {
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		if err := torch.ManualSeed(11); err != nil {
			return err
		}
		for _, k := range []Kind{NF4, Int8} {
			for _, dt := range []torch.DType{torch.Float32, torch.BFloat16} {
				for _, withBias := range []bool{false, true} {
					w := s.To(s.MulScalar(s.Randn([]int64{256, 128}, torch.Float32, torch.CPU), 0.05), dt)
					var bias *torch.Tensor
					if withBias {
						bias = s.To(s.Randn([]int64{256}, torch.Float32, torch.CPU), dt)
					}
					q := Quantize(s, k, "w", w)
					run := func(custom bool) (y, gx []byte, err error) {
						if err := torch.ManualSeed(3); err != nil {
							return nil, nil, err
						}
						x := s.Detach(s.To(s.Randn([]int64{2, 5, 128}, torch.Float32, torch.CPU), dt))
						if err := x.SetRequiresGrad(true); err != nil {
							return nil, nil, err
						}
						var out *torch.Tensor
						if custom {
							out = q.Linear(s, x, bias)
						} else {
							out = s.Linear(x, q.Dequantize(s), bias)
						}
						loss := s.Sum(s.Mul(out, s.To(s.Cos(s.To(out, torch.Float32)), dt)))
						if err := s.Err(); err != nil {
							return nil, nil, err
						}
						if err := loss.Backward(); err != nil {
							return nil, nil, err
						}
						if y, err = out.Bytes(); err != nil {
							return nil, nil, err
						}
						gx, err = s.Grad(x).Bytes()
						return y, gx, err
					}
					y1, g1, err := run(true)
					if err != nil {
						return err
					}
					y2, g2, err := run(false)
					if err != nil {
						return err
					}
					if !bytes.Equal(y1, y2) || !bytes.Equal(g1, g2) {
						t.Errorf("%s %v bias %v: output equal %v, input gradient equal %v", k, dt, withBias, bytes.Equal(y1, y2), bytes.Equal(g1, g2))
					}
					q2 := Quantize(s, k, "w", s.MulScalar(w, 1.01))
					q, q2 = q2, q
					y3, _, err := run(true)
					if err != nil {
						return err
					}
					q = q2
					if bytes.Equal(y1, y3) {
						t.Errorf("%s %v: a scaled weight gives the same output", k, dt)
					}
				}
			}
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nearestCode (two neighbours) gives torchao's full 16-entry search's code
// on every bfloat16 value in [-1, 1] and, in float32, on values uniform in
// [-1, 1] and the 64 values either side of every midpoint between entries
// and of every entry.
func TestNearestCode(t *testing.T) {
	var bf16, f32 []float64
	for b := range 1 << 16 {
		v := math.Float32frombits(uint32(b) << 16)
		if v >= -1 && v <= 1 {
			bf16 = append(bf16, float64(v))
		}
	}
	for i, e := range nf4Table {
		points := []float32{float32(e)}
		if i > 0 {
			points = append(points, float32((nf4Table[i-1]+e)/2))
		}
		for _, p := range points {
			lo, hi := p, p
			for range 64 {
				lo, hi = math.Nextafter32(lo, -2), math.Nextafter32(hi, 2)
				f32 = append(f32, float64(lo), float64(hi))
			}
			f32 = append(f32, float64(p))
		}
	}
	for i := range 1 << 16 {
		f32 = append(f32, 2*float64(i)/(1<<16)-1)
	}
	for _, c := range []struct {
		dt   torch.DType
		vals []float64
	}{{torch.BFloat16, bf16}, {torch.Float32, f32}} {
		err := torch.Run(func() error {
			s := torch.NewScope()
			defer s.Close()
			v := s.To(s.FromFloat64(c.vals, int64(len(c.vals))), c.dt)
			table := s.To(s.FromFloat64(nf4Table, 16), c.dt)
			fast, err := nearestCode(s, v, table).Int64s()
			if err != nil {
				return err
			}
			full, err := fullNearestCode(s, v, table).Int64s()
			if err != nil {
				return err
			}
			differ := 0
			for i := range fast {
				if fast[i] != full[i] {
					if differ < 5 {
						t.Errorf("%v %v: code %d, torchao's search %d", c.dt, c.vals[i], fast[i], full[i])
					}
					differ++
				}
			}
			t.Logf("%v: %d values, %d differ", c.dt, len(fast), differ)
			return s.Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestLinearScratchReuse: QuantLinear dequantizes into buffers kept across
// calls and grown to the largest weight; a chain of three linears of
// different sizes (small, larger, small again: the buffers grow, then are
// reused in part) still gives the output and input gradient of F.linear on
// the dequantized weights bit for bit, before and after the buffers are
// released. Without the lock-step use (two linears' Ŵ in one buffer at
// once) the later linears would read the wrong weights and differ.
func TestLinearScratchReuse(t *testing.T) {
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		if err := torch.ManualSeed(12); err != nil {
			return err
		}
		shapes := [][2]int64{{256, 128}, {512, 256}, {128, 512}}
		for _, k := range []Kind{NF4, Int8} {
			for _, dt := range []torch.DType{torch.Float32, torch.BFloat16} {
				var qs []*Weight
				for _, sh := range shapes {
					w := s.To(s.MulScalar(s.Randn([]int64{sh[0], sh[1]}, torch.Float32, torch.CPU), 0.05), dt)
					qs = append(qs, Quantize(s, k, "w", w))
				}
				run := func(custom bool) (y, gx []byte, err error) {
					x := s.Detach(s.To(s.Randn([]int64{3, 128}, torch.Float32, torch.CPU), dt))
					if err := x.SetRequiresGrad(true); err != nil {
						return nil, nil, err
					}
					h := x
					for _, q := range qs {
						if custom {
							h = q.Linear(s, h, nil)
						} else {
							h = s.Linear(h, q.Dequantize(s), nil)
						}
					}
					if err := s.Sum(s.Mul(h, h)).Backward(); err != nil {
						return nil, nil, err
					}
					if y, err = h.Bytes(); err != nil {
						return nil, nil, err
					}
					gx, err = s.Grad(x).Bytes()
					return y, gx, err
				}
				for round := range 2 {
					if err := torch.ManualSeed(3); err != nil {
						return err
					}
					y1, g1, err := run(true)
					if err != nil {
						return err
					}
					if err := torch.ManualSeed(3); err != nil {
						return err
					}
					y2, g2, err := run(false)
					if err != nil {
						return err
					}
					if !bytes.Equal(y1, y2) || !bytes.Equal(g1, g2) {
						t.Errorf("%s %v round %d: output equal %v, input gradient equal %v", k, dt, round, bytes.Equal(y1, y2), bytes.Equal(g1, g2))
					}
					torch.ReleaseQuantScratch()
				}
			}
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
