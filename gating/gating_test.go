package gating

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
)

func run(t *testing.T, fn func(s *torch.Scope)) {
	t.Helper()
	err := torch.Run(func() error {
		s := torch.NewScope()
		defer s.Close()
		fn(s)
		return s.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func values(t *testing.T, x *torch.Tensor) []float64 {
	t.Helper()
	v, err := x.Float64s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-5*(1+math.Abs(b)) }

var ln3, ln4 = math.Log(3), math.Log(4)

func entropy(p ...float64) float64 {
	var h float64
	for _, x := range p {
		if x > 0 {
			h -= x * math.Log(x)
		}
	}
	return h
}

// TestRouterStats checks the losses and telemetry of one gated group (K=2)
// against values computed by hand. logits are (T,2) for B=1.
func TestRouterStats(t *testing.T) {
	cases := []struct {
		name    string
		logits  []float64 // (T,2)
		member  []float64 // (T)
		dense   bool
		balance float64
		z       float64
		entropy float64
		load    []float64
		prob    []float64
		valid   float64
	}{
		{"balanced top-1", []float64{0, ln3, ln3, 0, 5, -5}, []float64{1, 1, 0}, false,
			// p = (.25,.75), (.75,.25); f = (.5,.5); P = (.5,.5); K·Σ f·P = 2·.5
			1, ln4 * ln4, entropy(.25, .75), []float64{.5, .5}, []float64{.5, .5}, 1},
		{"collapsed top-1", []float64{ln3, 0, ln3, 0, 0, 0}, []float64{1, 1, 0}, false,
			// both pick expert 0 with p = .75: f = (1,0), P = (.75,.25) -> 2·.75
			1.5, ln4 * ln4, entropy(.25, .75), []float64{1, 0}, []float64{.75, .25}, 1},
		{"single token", []float64{0, 0, 0, ln3, 0, 0}, []float64{0, 1, 0}, false,
			// one token, p = (.25,.75), picks 1: f = (0,1), P = (.25,.75) -> 2·.75
			1.5, ln4 * ln4, entropy(.25, .75), []float64{0, 1}, []float64{.25, .75}, 1},
		{"all pad", []float64{0, ln3, ln3, 0, 1, 2}, []float64{0, 0, 0}, false,
			0, 0, 0, []float64{0, 0}, []float64{0, 0}, 0},
		{"dense", []float64{0, ln3, 0, ln3, 0, 0}, []float64{1, 1, 0}, true,
			// f = P = (.25,.75): 2·(.0625+.5625)
			1.25, ln4 * ln4, entropy(.25, .75), []float64{.25, .75}, []float64{.25, .75}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run(t, func(s *torch.Scope) {
				lf := make([]float32, len(c.logits))
				for i, v := range c.logits {
					lf[i] = float32(v)
				}
				mf := make([]float32, len(c.member))
				for i, v := range c.member {
					mf[i] = float32(v)
				}
				logits := s.FromFloat32(lf, 1, 3, 1, 2)
				member := s.FromFloat32(mf, 1, 3, 1)
				p := s.Softmax(logits, -1)
				var hard *torch.Tensor
				k := 0
				if !c.dense {
					k = 1
					_, idx := s.TopK(p, 1, -1)
					hard = s.ScatterAdd(s.ZerosLike(p), -1, idx, s.Ones(idx.Shape(), torch.Float32, torch.CPU))
				}
				st := routerStats(s, logits, p, hard, member, s.FromFloat32([]float32{2}, 1), k)
				tm := st.telemetry(s, st.local(s))
				balance, z, valid := st.losses(s, st.local(s))
				check := func(name string, got *torch.Tensor, want ...float64) {
					v := values(t, got)
					for i := range want {
						if !near(v[i], want[i]) {
							t.Errorf("%s = %v, want %v", name, v, want)
							return
						}
					}
				}
				check("balance", balance, c.balance)
				check("z", z, c.z)
				check("valid", valid, c.valid)
				check("telemetry balance", tm.balance, c.balance)
				check("telemetry z", tm.z, c.z)
				check("entropy", tm.entropy, c.entropy)
				check("load", tm.load, c.load...)
				check("prob", tm.prob, c.prob...)
				check("telemetry valid", tm.valid, c.valid)
			})
		})
	}
}

// TestGateRoute checks a gate with unequal groups (K = 2 and 3) end to end:
// the padded softmax, top-1 straight-through coefficients, and that the
// tracker averages losses over the groups that saw tokens.
func TestGateRoute(t *testing.T) {
	run(t, func(s *torch.Scope) {
		rec := &Tracker{PerTarget: true}
		g, err := NewGate(s, torch.CPU, "t", 2, []string{"visual", "nonvisual"}, []int{2, 3},
			Config{TopK: 1}, rand.New(rand.NewPCG(1, 2)), 0.02, rec)
		if err != nil {
			t.Fatal(err)
		}
		// Gate rows: visual e0=(1,0) e1=(0,1); nonvisual e0=(1,1) e1=(0,0) e2=(-1,0).
		if err := torch.NoGrad(func() error {
			return g.Weight().CopyFrom(s.FromFloat32([]float32{1, 0, 0, 1, 1, 1, 0, 0, -1, 0}, 5, 2))
		}); err != nil {
			t.Fatal(err)
		}
		// Two tokens: x0=(ln3, 0) visual, x1=(0, 0) nonvisual.
		x := s.FromFloat32([]float32{float32(ln3), 0, 0, 0}, 1, 2, 2)
		member := s.FromFloat32([]float32{1, 0, 0, 1}, 1, 2, 2)
		coef := g.Route(s, x, member, false)
		v := values(t, coef)
		// token 0: visual logits (ln3, 0) -> picks e0; nonvisual logits (ln3, 0, -ln3) -> e0.
		// token 1: visual (0,0) -> e0 (first of a tie); nonvisual (0,0,0) -> e0.
		want := []float64{1, 0, 1, 0, 0, 1, 0, 1, 0, 0}
		for i := range want {
			if !near(v[i], want[i]) {
				t.Fatalf("coefficients %v, want %v", v, want)
			}
		}
		lb, z := rec.Losses(s, torch.CPU)
		// visual: one member token (token 0), p=(.75,.25), f=(1,0) -> 2·.75 = 1.5
		// nonvisual: one member token (token 1), p uniform (1/3), f=(1,0,0) -> 3·1/3 = 1
		if got := values(t, lb)[0]; !near(got, (1.5+1)/2) {
			t.Errorf("balance loss %v, want %v", got, 1.25)
		}
		wantZ := (ln4*ln4 + math.Log(3)*math.Log(3)) / 2
		if got := values(t, z)[0]; !near(got, wantZ) {
			t.Errorf("z-loss %v, want %v", got, wantZ)
		}
		snap, err := rec.Snapshot(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap) != 4 || snap[0].Group != "visual" || len(snap[1].Load) != 3 || !near(snap[1].Prob[2], 1.0/3) {
			t.Errorf("snapshot %+v", snap)
		}
		// The straight-through coefficients carry the gradient of p.
		if err := g.Weight().ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		if err := s.Sum(s.Mul(coef, s.FromFloat32([]float32{1, 2, 0, 0, 0, 0, 0, 0, 0, 0}, 1, 2, 5))).Backward(); err != nil {
			t.Fatal(err)
		}
		gv := values(t, s.Grad(g.Weight()))
		nonzero := false
		for _, x := range gv[:4] {
			nonzero = nonzero || x != 0
		}
		if !nonzero {
			t.Errorf("no gradient reached the visual gate: %v", gv)
		}
	})
}

func TestTrackerEmpty(t *testing.T) {
	run(t, func(s *torch.Scope) {
		var rec Tracker
		lb, z := rec.Losses(s, torch.CPU)
		if values(t, lb)[0] != 0 || values(t, z)[0] != 0 {
			t.Error("losses without gates should be zero")
		}
	})
}

func TestGateConfigErrors(t *testing.T) {
	run(t, func(s *torch.Scope) {
		rng := rand.New(rand.NewPCG(1, 1))
		for _, c := range []struct {
			K   []int
			cfg Config
		}{
			{[]int{1}, Config{TopK: 1}},
			{[]int{2}, Config{TopK: 3}},
			{[]int{2}, Config{TopK: -1}},
			{[]int{2}, Config{Temperature: -1}},
			{[]int{2, 3}, Config{TopK: 1, Noise: -0.1}},
		} {
			if _, err := NewGate(s, torch.CPU, "t", 4, make([]string, len(c.K)), c.K, c.cfg, rng, 0.02, nil); err == nil {
				t.Errorf("NewGate(K=%v, %+v) should fail", c.K, c.cfg)
			}
		}
	})
}

func TestModalityWeights(t *testing.T) {
	cases := []struct {
		mode    string
		obs     []Observation
		wv, wn  float64
		wantErr bool
	}{
		{mode: "static", obs: []Observation{{VisualTokens: 30, NonVisualTokens: 10}}, wv: 1, wn: 1},
		// N=40: w_v = 40/60, w_n = 40/20, so Σ w·N = 20+20 = N.
		{mode: "token-balanced", obs: []Observation{{VisualTokens: 30, NonVisualTokens: 10}}, wv: 40.0 / 60, wn: 2},
		{mode: "token-balanced", obs: []Observation{{VisualTokens: 0, NonVisualTokens: 10}}, wv: 1, wn: 1},
		// audio contributes 4× visual: w_v ← 4^(0.05), w_n ← 4^(-0.05).
		{mode: "contribution", obs: []Observation{{VisualNorm: 1, AudioNorm: 4}}, wv: math.Pow(4, 0.05), wn: math.Pow(4, -0.05)},
		// no measurement yet (B = 0 at init): unchanged.
		{mode: "contribution", obs: []Observation{{VisualNorm: 0, AudioNorm: 0}}, wv: 1, wn: 1},
		// a persistent imbalance saturates at the clip bounds.
		{mode: "contribution", obs: repeat(Observation{VisualNorm: 1, AudioNorm: 100}, 200), wv: 2, wn: 0.5},
		{mode: "loudest", wantErr: true},
	}
	for _, c := range cases {
		w, err := NewModalityWeights(c.mode)
		if c.wantErr {
			if err == nil {
				t.Errorf("mode %q accepted", c.mode)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range c.obs {
			w.Update(o)
		}
		if !near(w.Visual, c.wv) || !near(w.NonVisual, c.wn) {
			t.Errorf("%s after %d updates: (%v, %v), want (%v, %v)", c.mode, len(c.obs), w.Visual, w.NonVisual, c.wv, c.wn)
		}
	}
}

func repeat(o Observation, n int) []Observation {
	out := make([]Observation, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// TestTrackerGlobal checks that passes normalised by added sums (SetGlobal)
// give, together, the losses, gradients and telemetry of one pass over all
// their tokens: a batch split in two (as across two ranks), and two gates
// recorded in separate passes (as the layers of a checkpointed forward).
func TestTrackerGlobal(t *testing.T) {
	for _, cfg := range []Config{{TopK: 1}, {TopK: 2}, {}} {
		run(t, func(s *torch.Scope) {
			rng := rand.New(rand.NewPCG(3, 4))
			var gates []*Gate
			rec := &Tracker{Kmax: 3}
			for _, name := range []string{"a", "b"} {
				g, err := NewGate(s, torch.CPU, name, 4, []string{"visual", "nonvisual"}, []int{2, 3}, cfg, rng, 0.5, rec)
				if err != nil {
					t.Fatal(err)
				}
				gates = append(gates, g)
			}
			xv := make([]float32, 6*4)
			for i := range xv {
				xv[i] = float32(rng.NormFloat64())
			}
			mv := []float32{1, 0, 1, 0, 0, 1, 0, 1, 1, 0, 0, 0} // (6 tokens, 2 groups); the last is pad
			x := s.FromFloat32(xv, 1, 6, 4)
			member := s.FromFloat32(mv, 1, 6, 2)
			// pass runs the gates on tokens [from, from+n) and returns the
			// tracker's losses (with the global sums, if set by before).
			pass := func(gs []*Gate, from, n int64, before func()) (lb, z *torch.Tensor, snap []GroupStats) {
				rec.Reset()
				xs, ms := s.Narrow(x, 1, from, n), s.Narrow(member, 1, from, n)
				for _, g := range gs {
					g.Route(s, xs, ms, true)
				}
				if before != nil {
					before()
				}
				lb, z = rec.Losses(s, torch.CPU)
				snap, err := rec.Snapshot(s)
				if err != nil {
					t.Fatal(err)
				}
				return lb, z, snap
			}
			grads := func(loss *torch.Tensor) []float64 {
				for _, g := range gates {
					if err := g.Weight().ZeroGrad(); err != nil {
						t.Fatal(err)
					}
				}
				if err := loss.Backward(); err != nil {
					t.Fatal(err)
				}
				var out []float64
				for _, g := range gates {
					out = append(out, values(t, s.Clone(s.Grad(g.Weight())))...)
				}
				return out
			}
			lbAll, zAll, snapAll := pass(gates, 0, 6, nil)
			wantLoss := values(t, s.Stack([]*torch.Tensor{lbAll, zAll}, 0))
			wantGrad := grads(s.Add(lbAll, s.MulScalar(zAll, 0.1)))

			// A token split: each half's sums, added, normalise both halves.
			var sums []*torch.Tensor
			for _, h := range [][2]int64{{0, 3}, {3, 3}} {
				pass(gates, h[0], h[1], func() { sums = append(sums, rec.Sums(s)) })
			}
			global := s.Add(sums[0], sums[1])
			var lbs, zs []*torch.Tensor
			var snapSplit []GroupStats
			for _, h := range [][2]int64{{0, 3}, {3, 3}} {
				lb, z, snap := pass(gates, h[0], h[1], func() { rec.SetGlobal(global, 0) })
				lbs, zs, snapSplit = append(lbs, lb), append(zs, z), snap
			}
			lb, z := s.Add(lbs[0], lbs[1]), s.Add(zs[0], zs[1])
			compare(t, "token split: losses", values(t, s.Stack([]*torch.Tensor{lb, z}, 0)), wantLoss)
			compare(t, "token split: gradients", grads(s.Add(lb, s.MulScalar(z, 0.1))), wantGrad)
			compareSnap(t, "token split", snapSplit, snapAll)

			// A gate split: the whole batch, one gate per pass, rows offset.
			full := func() { sums = []*torch.Tensor{rec.Sums(s)} }
			pass(gates, 0, 6, full)
			lbs, zs = nil, nil
			for i, g := range gates {
				lb, z, _ := pass([]*Gate{g}, 0, 6, func() { rec.SetGlobal(sums[0], 2*i) })
				lbs, zs = append(lbs, lb), append(zs, z)
			}
			lb, z = s.Add(lbs[0], lbs[1]), s.Add(zs[0], zs[1])
			compare(t, "gate split: losses", values(t, s.Stack([]*torch.Tensor{lb, z}, 0)), wantLoss)
			compare(t, "gate split: gradients", grads(s.Add(lb, s.MulScalar(z, 0.1))), wantGrad)
		})
	}
}

func compare(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6*(1+math.Abs(want[i])) {
			t.Fatalf("%s: [%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func compareSnap(t *testing.T, what string, got, want []GroupStats) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d snapshot entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		compare(t, what+": "+w.Group+" "+w.Target, append([]float64{g.Balance, g.Z, g.Entropy, g.Tokens}, append(g.Load, g.Prob...)...),
			append([]float64{w.Balance, w.Z, w.Entropy, w.Tokens}, append(w.Load, w.Prob...)...))
	}
}
