package gating

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mose-llm/mose/internal/torch"
)

// ErrConfig reports an invalid router configuration.
var ErrConfig = errors.New("bad gate config")

// Config says how a gate turns logits into expert coefficients.
type Config struct {
	TopK        int     // experts picked per token (straight-through); 0 = dense softmax
	Temperature float64 // logits are divided by it; 0 means 1
	Noise       float64 // std of Gaussian noise added to the logits in training
}

// Validate checks c against the smallest expert count it will route.
func (c Config) Validate(minK int) error {
	switch {
	case c.TopK < 0:
		return fmt.Errorf("%w: top_k %d < 0", ErrConfig, c.TopK)
	case c.TopK > minK:
		return fmt.Errorf("%w: top_k %d exceeds the %d experts of a group", ErrConfig, c.TopK, minK)
	case c.Temperature < 0:
		return fmt.Errorf("%w: temperature %g < 0", ErrConfig, c.Temperature)
	case c.Noise < 0:
		return fmt.Errorf("%w: noise %g < 0", ErrConfig, c.Noise)
	}
	return nil
}

// Gate is the router of one target linear: one softmax gate per gated group
// (a group with more than one expert), all computed by a single matmul.
type Gate struct {
	Name   string        // target name, e.g. "model.layers.3.self_attn.q_proj"
	Groups []string      // gated groups, in order
	K      []int         // experts per gated group
	w      *torch.Tensor // (ΣK, in) float32, trainable: group g's rows are its gate

	cfg     Config
	kmax    int
	rec     *Tracker
	padIdx  *torch.Tensor // (Gg·Kmax) int64: padded slot -> column of [logits, -inf]
	backIdx *torch.Tensor // (ΣK) int64: expert -> padded slot
	kf      *torch.Tensor // (Gg) float32 K per group
}

// NewGate makes the gate of a target with input size in, on device dev,
// drawing its weights from N(0, std²) with rng. Its tensors are owned by
// owner; rec (may be nil) receives its losses and telemetry.
func NewGate(owner *torch.Scope, dev torch.Device, name string, in int64, groups []string, K []int, cfg Config, rng *rand.Rand, std float64, rec *Tracker) (*Gate, error) {
	if len(groups) == 0 || len(groups) != len(K) {
		return nil, fmt.Errorf("%w: %s: %d groups, %d expert counts", ErrConfig, name, len(groups), len(K))
	}
	if slices.Min(K) < 2 {
		return nil, fmt.Errorf("%w: %s: a gated group needs at least 2 experts, got %v", ErrConfig, name, K)
	}
	if err := cfg.Validate(slices.Min(K)); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if cfg.Temperature == 0 {
		cfg.Temperature = 1
	}
	g := &Gate{Name: name, Groups: slices.Clone(groups), K: slices.Clone(K), cfg: cfg, kmax: slices.Max(K), rec: rec}
	total := 0
	for _, k := range K {
		total += k
	}
	w := make([]float32, total*int(in))
	for i := range w {
		w[i] = float32(rng.NormFloat64() * std)
	}
	var pad, back []int64
	kf := make([]float32, len(K))
	off := 0
	for gi, k := range K {
		for j := range g.kmax {
			if j < k {
				back = append(back, int64(len(pad)))
				pad = append(pad, int64(off+j))
			} else {
				pad = append(pad, int64(total)) // the -inf column
			}
		}
		kf[gi] = float32(k)
		off += k
	}
	g.w = owner.ToDevice(owner.FromFloat32(w, int64(total), in), dev)
	g.padIdx = owner.ToDevice(owner.FromInt64(pad, int64(len(pad))), dev)
	g.backIdx = owner.ToDevice(owner.FromInt64(back, int64(len(back))), dev)
	g.kf = owner.ToDevice(owner.FromFloat32(kf, int64(len(kf))), dev)
	if err := owner.Err(); err != nil {
		return nil, err
	}
	if err := g.w.SetRequiresGrad(true); err != nil {
		return nil, err
	}
	return g, nil
}

// Weight is the gate matrix (ΣK, in), float32, trainable: the rows of gated
// group g are its K_g experts' gate vectors.
func (g *Gate) Weight() *torch.Tensor { return g.w }

// Experts is ΣK, the width of Route's output.
func (g *Gate) Experts() int64 { return g.backIdx.Numel() }

// Route returns per-token coefficients for the experts of every gated group:
// x (B,T,in), member (B,T,Gg) -> (B,T,ΣK), in the order of Weight's rows.
// Top-k gates give 1 to the chosen experts in the forward pass and pass the
// gradient through the probabilities (onehot − sg(p) + p); a dense gate gives p.
func (g *Gate) Route(s *torch.Scope, x, member *torch.Tensor, train bool) *torch.Tensor {
	sh := x.Shape()
	if len(sh) != 3 {
		s.Fail(fmt.Errorf("%w: %s: gate input must be (B,T,in), got %v", ErrConfig, g.Name, sh))
		return nil
	}
	B, T := sh[0], sh[1]
	Gg, Kmax := int64(len(g.K)), int64(g.kmax)
	z := s.Linear(x, g.w, nil) // (B,T,ΣK)
	if g.cfg.Temperature != 1 {
		z = s.DivScalar(z, g.cfg.Temperature)
	}
	if train && g.cfg.Noise > 0 {
		z = s.Add(z, s.MulScalar(s.Randn(z.Shape(), torch.Float32, x.Device()), g.cfg.Noise))
	}
	ninf := s.Full([]int64{B, T, 1}, math.Inf(-1), torch.Float32, x.Device())
	logits := s.View(s.IndexSelect(s.Cat([]*torch.Tensor{z, ninf}, -1), -1, g.padIdx), B, T, Gg, Kmax)
	p := s.Softmax(logits, -1) // (B,T,Gg,Kmax)
	coef, hard := p, (*torch.Tensor)(nil)
	if g.cfg.TopK > 0 {
		_, idx := s.TopK(p, int64(g.cfg.TopK), -1)                                                   // (B,T,Gg,k)
		hard = s.ScatterAdd(s.ZerosLike(p), -1, idx, s.Ones(idx.Shape(), torch.Float32, x.Device())) // 0/1
		coef = s.Add(s.Sub(hard, s.Detach(p)), p)
	}
	if g.rec != nil {
		g.rec.add(g, routerStats(s, logits, p, hard, member, g.kf, g.cfg.TopK))
	}
	return s.IndexSelect(s.View(coef, B, T, Gg*Kmax), -1, g.backIdx)
}
