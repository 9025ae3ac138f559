package torch

import (
	"math"
	"testing"
)

// attentionRef computes softmax(q·kᵀ·scale + mask)·v per (batch, head) in
// float64. allowed(i, j) false masks a key; bias(i, j) is added to the score.
func attentionRef(q, k, v nd, scale float64, allowed func(i, j int) bool, bias func(i, j int) float64) nd {
	B, H, Tq, E := int(q.shape[0]), int(q.shape[1]), int(q.shape[2]), int(q.shape[3])
	Tk, Ev := int(k.shape[2]), int(v.shape[3])
	out := nd{[]int64{int64(B), int64(H), int64(Tq), int64(Ev)}, make([]float64, B*H*Tq*Ev)}
	for b := range B {
		for h := range H {
			for i := range Tq {
				scores := make([]float64, Tk)
				for j := range Tk {
					if !allowed(i, j) {
						scores[j] = math.Inf(-1)
						continue
					}
					for e := range E {
						scores[j] += q.at(b, h, i, e) * k.at(b, h, j, e)
					}
					scores[j] = scores[j]*scale + bias(i, j)
				}
				p := softmaxRow(scores)
				for e := range Ev {
					var acc float64
					for j := range Tk {
						acc += p[j] * v.at(b, h, j, e)
					}
					out.v[((b*H+h)*Tq+i)*Ev+e] = acc
				}
			}
		}
	}
	return out
}

func TestAttention(t *testing.T) {
	q, k, v := rnd(40, 2, 2, 5, 4), rnd(41, 2, 2, 5, 4), rnd(42, 2, 2, 5, 3)
	all := func(i, j int) bool { return true }
	causal := func(i, j int) bool { return j <= i }
	zero := func(i, j int) float64 { return 0 }
	keep := func(i, j int) bool { return (i+j)%3 != 1 || j == 0 } // every row keeps key 0
	bias := func(i, j int) float64 { return 0.1*float64(i) - 0.2*float64(j) }
	boolMask := make([]bool, 25)
	floatMask := make([]float32, 25)
	for i := range 5 {
		for j := range 5 {
			boolMask[i*5+j] = keep(i, j)
			floatMask[i*5+j] = float32(bias(i, j))
		}
	}
	inTorch(t, func(s *Scope) {
		tq, tk, tv := s.fromND(q), s.fromND(k), s.fromND(v)
		d := 1 / math.Sqrt(4)
		expectND(t, "no_mask", s.Attention(tq, tk, tv, nil, false, 0), attentionRef(q, k, v, d, all, zero), 1e-5)
		expectND(t, "causal", s.Attention(tq, tk, tv, nil, true, 0), attentionRef(q, k, v, d, causal, zero), 1e-5)
		expectND(t, "scale", s.Attention(tq, tk, tv, nil, true, 0.3), attentionRef(q, k, v, 0.3, causal, zero), 1e-5)
		bm := s.FromBool(boolMask, 5, 5)
		expectND(t, "bool_mask", s.Attention(tq, tk, tv, bm, false, 0), attentionRef(q, k, v, d, keep, zero), 1e-5)
		fm := s.FromFloat32(floatMask, 5, 5)
		expectND(t, "float_mask", s.Attention(tq, tk, tv, fm, false, 0), attentionRef(q, k, v, d, all, bias), 1e-5)
		// bfloat16 takes the same no-mask path; compare loosely with the reference.
		bf := s.Attention(s.To(tq, BFloat16), s.To(tk, BFloat16), s.To(tv, BFloat16), nil, true, 0)
		if bf != nil && bf.DType() != BFloat16 {
			t.Errorf("bf16 attention returned %v", bf.DType())
		}
		expectND(t, "causal_bf16", bf, attentionRef(q, k, v, d, causal, zero), 3e-2)
	})
}

func TestCrossEntropy(t *testing.T) {
	logits := rnd(50, 5, 4)
	targets := []int64{1, -100, 3, 0, -100}
	var want float64
	n := 0
	per := make([]float64, 5)
	for i, y := range targets {
		if y < 0 {
			continue
		}
		row := logits.v[i*4 : i*4+4]
		p := softmaxRow(row)
		per[i] = -math.Log(p[y])
		want += per[i]
		n++
	}
	inTorch(t, func(s *Scope) {
		l, y := s.fromND(logits), s.FromInt64(targets, 5)
		expectND(t, "ce_mean", s.CrossEntropy(l, y, -100, ReduceMean), nd{[]int64{}, []float64{want / float64(n)}}, 1e-6)
		expectND(t, "ce_sum", s.CrossEntropy(l, y, -100, ReduceSum), nd{[]int64{}, []float64{want}}, 1e-6)
		expectND(t, "ce_none", s.CrossEntropy(l, y, -100, ReduceNone), nd{[]int64{5}, per}, 1e-6)
	})
}

func TestDropoutTrain(t *testing.T) {
	inTorch(t, func(s *Scope) {
		if err := ManualSeed(3); err != nil {
			t.Fatal(err)
		}
		x := s.Ones([]int64{10000}, Float32, CPU)
		v, err := s.Dropout(x, 0.25, true).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		zeros := 0
		for _, f := range v {
			switch f {
			case 0:
				zeros++
			case float32(1 / 0.75):
			default:
				t.Fatalf("dropout produced %v; want 0 or 1/(1-p)", f)
			}
		}
		if frac := float64(zeros) / 10000; math.Abs(frac-0.25) > 0.02 {
			t.Errorf("dropped fraction %.3f, want about 0.25", frac)
		}
	})
}
