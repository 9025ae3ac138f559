package trainer

import (
	"github.com/mose-llm/mose/gating"
	"github.com/mose-llm/mose/internal/torch"
)

// layerSnapshot reads the router telemetry of the gates recorded since the
// tracker's last Reset (one decoder layer, with activation checkpointing)
// as per-target entries, whatever Tracker.PerTarget says: mergeSnapshots
// needs every instance to average them as Tracker.Snapshot does.
func (r *run) layerSnapshot(s *torch.Scope) ([]gating.GroupStats, error) {
	t := r.c.Tracker
	prev := t.PerTarget
	t.PerTarget = true
	all, err := t.Snapshot(s)
	t.PerTarget = prev
	if err != nil {
		return nil, err
	}
	var per []gating.GroupStats
	for _, st := range all {
		if st.Target != "" {
			per = append(per, st)
		}
	}
	return per, nil
}

// mergeSnapshots combines per-layer per-target telemetry (layerSnapshot, in
// forward order) into what Tracker.Snapshot returns for the whole pass: one
// entry per group, averaged over the (layer, target) instances that routed
// tokens, in order of first appearance, then the per-target entries when
// perTarget. The sums run in the same order over the same float64 values as
// Snapshot's, so the numbers are the same.
func mergeSnapshots(layers [][]gating.GroupStats, perTarget bool) []gating.GroupStats {
	type acc struct {
		gating.GroupStats
		n int
	}
	byGroup := map[string]*acc{}
	var order []string
	var per []gating.GroupStats
	for _, entries := range layers {
		for _, st := range entries {
			if perTarget {
				per = append(per, st)
			}
			if st.Tokens == 0 { // Snapshot's valid = tokens > 0
				continue
			}
			a, ok := byGroup[st.Group]
			if !ok {
				k := len(st.Load)
				a = &acc{GroupStats: gating.GroupStats{Group: st.Group, Load: make([]float64, k), Prob: make([]float64, k)}}
				byGroup[st.Group] = a
				order = append(order, st.Group)
			}
			a.n++
			a.Tokens += st.Tokens
			a.Balance += st.Balance
			a.Z += st.Z
			a.Entropy += st.Entropy
			for j := range min(len(st.Load), len(a.Load)) {
				a.Load[j] += st.Load[j]
				a.Prob[j] += st.Prob[j]
			}
		}
	}
	var out []gating.GroupStats
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
	return append(out, per...)
}
