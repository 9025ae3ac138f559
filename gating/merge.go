package gating

// Merge combines per-(layer, target) router telemetry, in forward order, into
// what a whole pass reports: one entry per group, averaged over the
// instances that routed tokens (Tokens > 0), in order of first appearance,
// then, when perTarget, every instance's own entry. Snapshot reports a pass
// through it, and activation checkpointing, which sees one decoder layer at
// a time, merges its layers' entries with it: the sums run in the same order
// over the same float64 values either way.
func Merge(entries []GroupStats, perTarget bool) []GroupStats {
	type acc struct {
		GroupStats
		n int
	}
	byGroup := map[string]*acc{}
	var order []string
	var per []GroupStats
	for _, st := range entries {
		if perTarget {
			per = append(per, st)
		}
		if st.Tokens == 0 {
			continue
		}
		a, ok := byGroup[st.Group]
		if !ok {
			k := len(st.Load)
			a = &acc{GroupStats: GroupStats{Group: st.Group, Load: make([]float64, k), Prob: make([]float64, k)}}
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
	return append(out, per...)
}
