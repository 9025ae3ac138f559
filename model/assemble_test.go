package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// linearRef computes W·x + b in float64 for W (out,in) row-major.
func linearRef(w, b []float32, x []float64, out int) []float64 {
	in := len(x)
	y := make([]float64, out)
	for o := range out {
		y[o] = float64(b[o])
		for i := range in {
			y[o] += float64(w[o*in+i]) * x[i]
		}
	}
	return y
}

// TestEmbedSplicesProjectedFeatures checks token assembly against a Go
// reference: text positions hold their embedding rows, feature positions the
// projector's output (linear for frames, Linear-GELU-Linear for audio).
func TestEmbedSplicesProjectedFeatures(t *testing.T) {
	dir := writeTiny(t, 0)
	const B, T, D = 2, 7, 32
	ids := []int64{5, 0, 0, 0, 9, 0, 11, 7, 8, 0, 0, 0, 13, 0}
	framePos := []int64{1, 2, 3, 7 + 2, 7 + 3, 7 + 4} // 3 tokens per row
	audioPos := []int64{5, 7 + 5}
	rng := rand.New(rand.NewPCG(3, 4))
	frames := make([]float32, B*3*6)
	audio := make([]float32, B*1*5)
	for i := range frames {
		frames[i] = float32(rng.NormFloat64())
	}
	for i := range audio {
		audio[i] = float32(rng.NormFloat64())
	}
	err := torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		in := &Inputs{
			IDs: s.FromInt64(ids, B, T),
			Features: []Features{
				{Data: s.FromFloat32(frames, B, 3, 6), Positions: s.FromInt64(framePos, B*3)},
				{Data: s.FromFloat32(audio, B, 1, 5), Positions: s.FromInt64(audioPos, B)},
			},
		}
		x := m.Embed(s, in)
		if err := s.Err(); err != nil {
			return err
		}
		got, _ := x.Float32s()
		emb, _ := m.EmbedTokens.Float32s()
		pf, pa := &m.Projectors[0], &m.Projectors[1]
		fw, _ := pf.W1.Float32s()
		fb, _ := pf.B1.Float32s()
		a1w, _ := pa.W1.Float32s()
		a1b, _ := pa.B1.Float32s()
		a2w, _ := pa.W2.Float32s()
		a2b, _ := pa.B2.Float32s()
		want := make([][]float64, B*T)
		for p := range B * T {
			row := make([]float64, D)
			for d := range D {
				row[d] = float64(emb[int(ids[p])*D+d])
			}
			want[p] = row
		}
		for k, p := range framePos {
			x := make([]float64, 6)
			for i := range x {
				x[i] = float64(frames[k*6+i])
			}
			want[p] = linearRef(fw, fb, x, D)
		}
		for k, p := range audioPos {
			x := make([]float64, 5)
			for i := range x {
				x[i] = float64(audio[k*5+i])
			}
			h := linearRef(a1w, a1b, x, D)
			for i, v := range h {
				h[i] = 0.5 * v * (1 + math.Erf(v/math.Sqrt2))
			}
			want[p] = linearRef(a2w, a2b, h, D)
		}
		for p := range B * T {
			for d := range D {
				if diff := math.Abs(float64(got[p*D+d]) - want[p][d]); diff > 1e-5 {
					t.Fatalf("position %d dim %d: %v, want %v", p, d, got[p*D+d], want[p][d])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// addOne is an adapter whose delta is a constant, to check the hook.
type addOne struct{ calls int }

func (a *addOne) Delta(s *torch.Scope, x, onehot *torch.Tensor, train bool) *torch.Tensor {
	a.calls++
	if onehot == nil || onehot.Size(-1) != modality.Count || train {
		s.Fail(ErrConfig)
		return nil
	}
	sh := x.Shape()
	return s.Ones([]int64{sh[0], sh[1], 16}, torch.Float32, torch.CPU) // k_proj out = 2 KV heads × 8
}

func TestAdapterHook(t *testing.T) {
	dir := writeTiny(t, 0)
	err := torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		x := s.Randn([]int64{2, 3, 32}, torch.Float32, torch.CPU)
		r := &Routing{Modality: s.Zeros([]int64{2, 3}, torch.Int64, torch.CPU)}
		r.OneHot = s.To(s.OneHot(r.Modality, modality.Count), torch.Float32)
		k := &m.Layers[0].K
		base := k.Forward(s, x, r)
		a := &addOne{}
		k.Adapter = a
		with := k.Forward(s, x, r)
		diff := s.Sub(with, base)
		if err := s.Err(); err != nil {
			return err
		}
		v, _ := diff.Float32s()
		for _, d := range v {
			if math.Abs(float64(d)-1) > 1e-6 {
				t.Fatalf("adapter delta not added: %v", d)
			}
		}
		// The model passes routing through Forward to every adapted linear.
		ids := s.FromInt64([]int64{1, 2, 3}, 1, 3)
		mod := s.Zeros([]int64{1, 3}, torch.Int64, torch.CPU)
		m.Forward(s, &Inputs{IDs: ids, Modality: mod}, false)
		if a.calls != 2 {
			t.Errorf("adapter called %d times, want 2", a.calls)
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
