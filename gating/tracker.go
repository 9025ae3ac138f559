package gating

import (
	"github.com/mose-llm/mose/internal/torch"
)

// Tracker collects the router losses and telemetry of every gate during one
// forward pass. Its tensors belong to that pass's scope: read them (Losses,
// Snapshot) before the scope closes, and Reset before the next pass.
type Tracker struct {
	// PerTarget keeps each gate's statistics in Snapshot, not only the
	// per-group averages.
	PerTarget bool
	gates     []*Gate
	stats     []groupStats
}

// Reset forgets the previous pass.
func (t *Tracker) Reset() {
	t.gates, t.stats = t.gates[:0], t.stats[:0]
}

func (t *Tracker) add(g *Gate, st groupStats) {
	t.gates = append(t.gates, g)
	t.stats = append(t.stats, st)
}

// Losses returns the load-balancing loss and the z-loss of the pass: each
// averaged over every (layer, target, group) that routed at least one token.
// Both are 0-dim float32 tensors in s, zero when no gate ran.
func (t *Tracker) Losses(s *torch.Scope, dev torch.Device) (balance, z *torch.Tensor) {
	if len(t.stats) == 0 {
		zero := s.Zeros(nil, torch.Float32, dev)
		return zero, zero
	}
	var bs, zs, vs []*torch.Tensor
	for _, st := range t.stats {
		bs = append(bs, s.Mul(st.balance, st.valid))
		zs = append(zs, s.Mul(st.z, st.valid))
		vs = append(vs, st.valid)
	}
	n := s.ClampMin(s.Sum(s.Cat(vs, 0)), 1)
	return s.Div(s.Sum(s.Cat(bs, 0)), n), s.Div(s.Sum(s.Cat(zs, 0)), n)
}

// GroupStats is the router telemetry of one group, averaged over the
// (layer, target) instances where it routed tokens.
type GroupStats struct {
	Group   string    `json:"group"`
	Target  string    `json:"target,omitempty"` // set in per-target snapshots
	Load    []float64 `json:"load"`             // f_k: fraction of routing slots per expert
	Prob    []float64 `json:"prob"`             // P_k: mean gate probability per expert
	Entropy float64   `json:"entropy"`          // mean gate entropy (nats)
	Z       float64   `json:"z"`                // mean logsumexp(logits)²
	Balance float64   `json:"balance"`          // K·Σ f·P (1 = uniform)
	Tokens  float64   `json:"tokens"`           // member tokens per instance
}

// Snapshot reads the pass's telemetry back to the host, one device-to-host
// copy for all gates. It returns one entry per group name (averaged over
// instances that saw tokens), and one per (target, group) if PerTarget.
func (t *Tracker) Snapshot(s *torch.Scope) ([]GroupStats, error) {
	if len(t.stats) == 0 {
		return nil, nil
	}
	c := s.Child()
	defer c.Close()
	// One flat row per (instance, group): valid, tokens, balance, z, entropy,
	// then load and prob padded to Kmax.
	var rows []*torch.Tensor
	kmax := int64(0)
	for _, g := range t.gates {
		kmax = max(kmax, int64(g.kmax))
	}
	for i, st := range t.stats {
		g := t.gates[i]
		pad := kmax - int64(g.kmax)
		load, prob := st.load, st.prob
		if pad > 0 {
			zeros := c.Zeros([]int64{int64(len(g.K)), pad}, torch.Float32, load.Device())
			load = c.Cat([]*torch.Tensor{load, zeros}, 1)
			prob = c.Cat([]*torch.Tensor{prob, zeros}, 1)
		}
		cols := []*torch.Tensor{
			c.Unsqueeze(st.valid, 1), c.Unsqueeze(st.tokens, 1), c.Unsqueeze(c.Detach(st.balance), 1),
			c.Unsqueeze(c.Detach(st.z), 1), c.Unsqueeze(c.Detach(st.entropy), 1), load, c.Detach(prob),
		}
		rows = append(rows, c.Cat(cols, 1)) // (Gg, 5+2·Kmax)
	}
	all := c.Cat(rows, 0)
	if err := c.Err(); err != nil {
		return nil, err
	}
	v, err := all.Float64s()
	if err != nil {
		return nil, err
	}
	width := int(5 + 2*kmax)
	type acc struct {
		GroupStats
		n int
	}
	byGroup := map[string]*acc{}
	var order []string
	var per []GroupStats
	r := 0
	for i := range t.stats {
		g := t.gates[i]
		for gi, name := range g.Groups {
			row := v[r*width : (r+1)*width]
			r++
			k := g.K[gi]
			st := GroupStats{Group: name, Target: g.Name, Tokens: row[1], Balance: row[2], Z: row[3], Entropy: row[4],
				Load: append([]float64(nil), row[5:5+k]...), Prob: append([]float64(nil), row[5+int(kmax):5+int(kmax)+k]...)}
			if t.PerTarget {
				per = append(per, st)
			}
			if row[0] == 0 {
				continue
			}
			a, ok := byGroup[name]
			if !ok {
				a = &acc{GroupStats: GroupStats{Group: name, Load: make([]float64, k), Prob: make([]float64, k)}}
				byGroup[name] = a
				order = append(order, name)
			}
			a.n++
			a.Tokens += st.Tokens
			a.Balance += st.Balance
			a.Z += st.Z
			a.Entropy += st.Entropy
			for j := range min(k, len(a.Load)) {
				a.Load[j] += st.Load[j]
				a.Prob[j] += st.Prob[j]
			}
		}
	}
	var out []GroupStats
	for _, name := range order {
		a := byGroup[name]
		f := 1 / float64(a.n)
		st := a.GroupStats
		st.Tokens *= f
		st.Balance *= f
		st.Z *= f
		st.Entropy *= f
		for j := range st.Load {
			st.Load[j] *= f
			st.Prob[j] *= f
		}
		out = append(out, st)
	}
	return append(out, per...), nil
}
