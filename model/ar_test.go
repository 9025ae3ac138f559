package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// arReference computes causal attention with AR in float64 for B=1:
// q,k,v (H,T,E), mods (T); heads are flagged when ρ > tau (fixed).
func arReference(q, k, v [][]float64, H, T, E int, mods []int, beta, tau float64) []float64 {
	out := make([]float64, H*T*E)
	for h := range H {
		for i := range T {
			a := make([]float64, T)
			m := math.Inf(-1)
			for j := 0; j <= i; j++ {
				for e := range E {
					a[j] += q[h][i*E+e] * k[h][j*E+e]
				}
				a[j] /= math.Sqrt(float64(E))
				m = math.Max(m, a[j])
			}
			var z float64
			for j := 0; j <= i; j++ {
				a[j] = math.Exp(a[j] - m)
				z += a[j]
			}
			var mA, mV float64
			for j := 0; j <= i; j++ {
				a[j] /= z
				if mods[j] == modality.Audio {
					mA += a[j]
				}
				if mods[j] == modality.Visual {
					mV += a[j]
				}
			}
			if rho := mA / (mA + mV + 1e-6); rho > tau && mV > 1e-6 {
				moved := beta * mA
				for j := 0; j <= i; j++ {
					switch mods[j] {
					case modality.Audio:
						a[j] *= 1 - beta
					case modality.Visual:
						a[j] += moved * a[j] / (mV + 1e-6)
					}
				}
			}
			for e := range E {
				for j := 0; j <= i; j++ {
					out[(h*T+i)*E+e] += a[j] * v[h][j*E+e]
				}
			}
		}
	}
	return out
}

func TestAttentionReallocation(t *testing.T) {
	const H, T, E = 3, 6, 4
	mods := []int{modality.Text, modality.Visual, modality.Visual, modality.Audio, modality.Text, modality.Text}
	rng := rand.New(rand.NewPCG(4, 2))
	mk := func() ([][]float64, []float32) {
		rows := make([][]float64, H)
		var flat []float32
		for h := range rows {
			rows[h] = make([]float64, T*E)
			for i := range rows[h] {
				x := float32(rng.NormFloat64() * 1.5)
				rows[h][i] = float64(x)
				flat = append(flat, x)
			}
		}
		return rows, flat
	}
	q, qf := mk()
	k, kf := mk()
	v, vf := mk()
	for _, c := range []struct{ beta, tau float64 }{{1, 0}, {0.5, 0.2}, {0.3, 0.9}} {
		err := torch.Run(func() error {
			s := torch.NewScope()
			defer s.Close()
			ids := make([]int64, T)
			for i, m := range mods {
				ids[i] = int64(m)
			}
			onehot := s.To(s.OneHot(s.FromInt64(ids, 1, T), modality.Count), torch.Float32)
			ar := &AR{Beta: c.beta, TauValue: c.tau, Stats: &ARStats{}}
			out := ar.reallocate(s, 0, s.FromFloat32(qf, 1, H, T, E), s.FromFloat32(kf, 1, H, T, E), s.FromFloat32(vf, 1, H, T, E), onehot, attnMask{causal: true})
			if err := s.Err(); err != nil {
				return err
			}
			got, _ := out.Float64s()
			want := arReference(q, k, v, H, T, E, mods, c.beta, c.tau)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-4 {
					t.Fatalf("β=%g τ=%g: element %d = %v, want %v", c.beta, c.tau, i, got[i], want[i])
				}
			}
			return ar.Stats.collect(s, 1, H)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// With nothing flagged (β = 0), the AR path computes plain causal attention.
func TestARPathMatchesSDPA(t *testing.T) {
	dir := writeTiny(t, 0)
	err := torch.Run(func() error {
		m, err := Load(dir, Options{})
		if err != nil {
			return err
		}
		defer m.Close()
		s := torch.NewScope()
		defer s.Close()
		in := &Inputs{IDs: s.FromInt64([]int64{1, 5, 9, 2, 7, 3, 11, 4}, 2, 4), Modality: s.FromInt64([]int64{0, 1, 2, 0, 0, 1, 1, 2}, 2, 4)}
		base, _ := m.Logits(s, m.Forward(s, in, false), nil).Float32s()
		stats := &ARStats{}
		m.AR = &AR{First: 0, Last: 1, Beta: 0, Adaptive: true, Kappa: 1, Stats: stats}
		with, _ := m.Logits(s, m.Forward(s, in, false), nil).Float32s()
		m.AR = nil
		for i := range base {
			if math.Abs(float64(base[i]-with[i])) > 1e-5 {
				t.Fatalf("logit %d: %v with AR(β=0), %v without", i, with[i], base[i])
			}
		}
		if len(stats.Audio) != 2 || stats.Queries[1][0] != 8 {
			t.Errorf("stats not collected: %+v", stats)
		}
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
