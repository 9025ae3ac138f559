package gating

import (
	"github.com/mose-llm/mose/internal/torch"
)

// Tracker collects the router losses and telemetry of every gate during one
// forward pass. Its tensors belong to that pass's scope: read them (Sums,
// Losses, Snapshot) before the scope closes, and Reset before the next pass.
//
// The losses of a pass are normalised by its own router sums, or by global
// ones (SetGlobal): the sums of every pass that makes up one loss, such as
// the slices of a batch on several ranks (all-reduced) or the layers of a
// checkpointed forward.
type Tracker struct {
	// PerTarget keeps each gate's statistics in Snapshot, not only the
	// per-group averages.
	PerTarget bool
	// Kmax is the width of Sums' expert columns: the widest group of every
	// gate that records here (0: the widest gate recorded in this pass).
	Kmax   int
	gates  []*Gate
	stats  []groupStats
	global *torch.Tensor // (R_all, 3+2·Kmax) or nil
	row    int           // this pass's first row in global
}

// Reset forgets the previous pass and its global sums.
func (t *Tracker) Reset() {
	t.gates, t.stats = t.gates[:0], t.stats[:0]
	t.global, t.row = nil, 0
}

func (t *Tracker) add(g *Gate, st groupStats) {
	t.gates = append(t.gates, g)
	t.stats = append(t.stats, st)
}

// Rows is the number of (gate, group) rows this pass recorded (Sums' rows).
func (t *Tracker) Rows() int {
	n := 0
	for _, g := range t.gates {
		n += len(g.K)
	}
	return n
}

func (t *Tracker) kmax() int {
	k := t.Kmax
	for _, g := range t.gates {
		k = max(k, g.kmax)
	}
	return k
}

// Sums returns this pass's router sums, detached, as a new (R, 3+2·Kmax)
// float32 tensor in s: one row per (gate, group) in recording order, with
// columns n (member tokens), Σ top-k selections (or Σ p for a dense gate)
// per expert, Σ p per expert, Σ logsumexp², Σ entropy. Rows of different
// passes over the same gates add up (all-reduce them across ranks). Nil
// when no gate ran.
func (t *Tracker) Sums(s *torch.Scope) *torch.Tensor {
	if len(t.stats) == 0 {
		return nil
	}
	kmax := int64(t.kmax())
	rows := make([]*torch.Tensor, 0, len(t.stats))
	for i, st := range t.stats {
		g, loc := t.gates[i], st.local(s)
		rows = append(rows, s.Cat([]*torch.Tensor{s.Unsqueeze(loc.n, 1), padCols(s, loc.hard, g, kmax),
			padCols(s, loc.p, g, kmax), s.Unsqueeze(loc.lse, 1), s.Unsqueeze(loc.ent, 1)}, 1)) // (Gg, W)
	}
	return s.Contiguous(s.Cat(rows, 0))
}

// padCols widens x (Gg, g.kmax) to (Gg, kmax) with zeros.
func padCols(s *torch.Scope, x *torch.Tensor, g *Gate, kmax int64) *torch.Tensor {
	pad := kmax - int64(g.kmax)
	if pad <= 0 {
		return x
	}
	return s.Cat([]*torch.Tensor{x, s.Zeros([]int64{int64(len(g.K)), pad}, torch.Float32, x.Device())}, 1)
}

// SetGlobal normalises this pass's losses and telemetry by sums (as returned
// by Sums, added over every pass that makes up the loss; not copied, keep it
// alive), of which this pass's first (gate, group) is row row. Nil returns to
// the pass's own sums. Reset clears it.
func (t *Tracker) SetGlobal(sums *torch.Tensor, row int) {
	t.global, t.row = sums, row
}

// totals of the i-th recorded gate: global rows or its own sums.
func (t *Tracker) totals(s *torch.Scope, i, row int) totals {
	st := t.stats[i]
	if t.global == nil {
		return st.local(s)
	}
	g := t.gates[i]
	Gg, km, K := int64(len(g.K)), int64(g.kmax), int64(t.global.Shape()[1]-3)/2
	r := s.Narrow(t.global, 0, int64(row), Gg)
	return totals{n: s.Squeeze(s.Narrow(r, 1, 0, 1), 1), hard: s.Narrow(r, 1, 1, km), p: s.Narrow(r, 1, 1+K, km),
		lse: s.Squeeze(s.Narrow(r, 1, 1+2*K, 1), 1), ent: s.Squeeze(s.Narrow(r, 1, 2+2*K, 1), 1)}
}

// Losses returns this pass's share of the load-balancing loss and the
// z-loss: each the mean, over every (layer, target, group) that routed at
// least one token, of that group's loss (see groupStats.losses). With global
// sums the mean is over the valid rows of the global sums, so the shares of
// all passes add up to the loss of all their tokens. Both are 0-dim float32
// tensors in s, zero when no gate ran.
func (t *Tracker) Losses(s *torch.Scope, dev torch.Device) (balance, z *torch.Tensor) {
	if len(t.stats) == 0 {
		zero := s.Zeros(nil, torch.Float32, dev)
		return zero, zero
	}
	var bs, zs, vs []*torch.Tensor
	row := t.row
	for i, st := range t.stats {
		b, zz, v := st.losses(s, t.totals(s, i, row))
		row += len(t.gates[i].K)
		bs = append(bs, s.Mul(b, v))
		zs = append(zs, s.Mul(zz, v))
		vs = append(vs, v)
	}
	var n *torch.Tensor
	if t.global == nil {
		n = s.ClampMin(s.Sum(s.Cat(vs, 0)), 1)
	} else {
		n = s.ClampMin(s.Sum(s.To(s.GtScalar(s.Narrow(t.global, 1, 0, 1), 0), torch.Float32)), 1)
	}
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

// Snapshot reads the router telemetry of the pass recorded since Reset: one
// entry per group, averaged over the (target, group) instances that routed
// tokens (Merge), then one per (target, group) if PerTarget.
func (t *Tracker) Snapshot(s *torch.Scope) ([]GroupStats, error) {
	entries, err := t.Instances(s)
	if err != nil || entries == nil {
		return nil, err
	}
	return Merge(entries, t.PerTarget), nil
}

// Instances reads the telemetry of every (target, group) instance recorded
// since Reset, in forward order: what Snapshot merges. Activation
// checkpointing reads one decoder layer's at a time and merges them all.
func (t *Tracker) Instances(s *torch.Scope) ([]GroupStats, error) {
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
	row := t.row
	for i, st := range t.stats {
		g := t.gates[i]
		tm := st.telemetry(c, t.totals(c, i, row))
		row += len(g.K)
		pad := kmax - int64(g.kmax)
		load, prob := tm.load, tm.prob
		if pad > 0 {
			zeros := c.Zeros([]int64{int64(len(g.K)), pad}, torch.Float32, load.Device())
			load = c.Cat([]*torch.Tensor{load, zeros}, 1)
			prob = c.Cat([]*torch.Tensor{prob, zeros}, 1)
		}
		cols := []*torch.Tensor{
			c.Unsqueeze(tm.valid, 1), c.Unsqueeze(tm.tokens, 1), c.Unsqueeze(tm.balance, 1),
			c.Unsqueeze(tm.z, 1), c.Unsqueeze(tm.entropy, 1), load, prob,
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
	var entries []GroupStats
	r := 0
	for i := range t.stats {
		g := t.gates[i]
		for gi, name := range g.Groups {
			row := v[r*width : (r+1)*width]
			r++
			k := g.K[gi]
			entries = append(entries, GroupStats{Group: name, Target: g.Name, Tokens: row[1], Balance: row[2], Z: row[3], Entropy: row[4],
				Load: append([]float64(nil), row[5:5+k]...), Prob: append([]float64(nil), row[5+int(kmax):5+int(kmax)+k]...)})
		}
	}
	return entries, nil
}
