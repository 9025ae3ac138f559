package torch

import "testing"

// permuteND is the reference for Permute: out dim i is a's dim perm[i].
func permuteND(a nd, perm ...int) nd {
	shape := make([]int64, len(perm))
	for i, p := range perm {
		shape[i] = a.shape[p]
	}
	out := nd{shape, make([]float64, len(a.v))}
	for i := range out.v {
		c := unravel(shape, i)
		src := make([]int, len(c))
		for j, p := range perm {
			src[p] = c[j]
		}
		out.v[i] = a.at(src...)
	}
	return out
}

// sliceND keeps [start, start+n) of dimension dim.
func sliceND(a nd, dim, start, n int) nd {
	shape := append([]int64(nil), a.shape...)
	shape[dim] = int64(n)
	out := nd{shape, make([]float64, numelOf(shape))}
	for i := range out.v {
		c := unravel(shape, i)
		c[dim] += start
		out.v[i] = a.at(c...)
	}
	return out
}

func TestShapeOps(t *testing.T) {
	a := rnd(20, 2, 3, 4)
	same := func(shape ...int64) nd { return nd{shape, a.v} }
	inTorch(t, func(s *Scope) {
		x := s.fromND(a)
		expectND(t, "view", s.View(x, 6, 4), same(6, 4), 0)
		expectND(t, "view_infer", s.View(x, -1, 12), same(2, 12), 0)
		expectND(t, "reshape", s.Reshape(x, 4, 6), same(4, 6), 0)
		expectND(t, "flatten", s.Flatten(x, 1, -1), same(2, 12), 0)
		expectND(t, "unsqueeze", s.Unsqueeze(x, 1), same(2, 1, 3, 4), 0)
		expectND(t, "squeeze", s.Squeeze(s.Unsqueeze(x, 0), 0), same(2, 3, 4), 0)
		expectND(t, "permute", s.Permute(x, 2, 0, 1), permuteND(a, 2, 0, 1), 0)
		expectND(t, "transpose", s.Transpose(x, 0, 2), permuteND(a, 2, 1, 0), 0)
		expectND(t, "transpose_contiguous_view", s.View(s.Contiguous(s.Transpose(x, 1, 2)), 2, 12),
			func() nd { p := permuteND(a, 0, 2, 1); p.shape = []int64{2, 12}; return p }(), 0)
		expectND(t, "narrow", s.Narrow(x, 2, 1, 2), sliceND(a, 2, 1, 2), 0)
		expectND(t, "narrow_dim1", s.Narrow(x, 1, 2, 1), sliceND(a, 1, 2, 1), 0)
		b := rnd(21, 2, 3, 2)
		cat := s.Cat([]*Tensor{x, s.fromND(b)}, 2)
		expectND(t, "cat.left", s.Narrow(cat, 2, 0, 4), a, 0)
		expectND(t, "cat.right", s.Narrow(cat, 2, 4, 2), b, 0)
		st := s.Stack([]*Tensor{x, x}, 0)
		expectND(t, "stack", st, nd{[]int64{2, 2, 3, 4}, append(append([]float64{}, a.v...), a.v...)}, 0)
		r := rnd(22, 3, 1)
		ex := s.Expand(s.fromND(r), 3, 4)
		expectND(t, "expand", ex, broadcast(r, nd{[]int64{3, 4}, make([]float64, 12)},
			func(x, _ float64) float64 { return x }), 0)
		expectND(t, "to_float64", s.To(x, Float64), a, 0)
		expectND(t, "to_device_cpu", s.ToDevice(x, CPU), a, 0)
	})
}

func TestIndexOps(t *testing.T) {
	a := rnd(30, 4, 3)
	inTorch(t, func(s *Scope) {
		x := s.fromND(a)
		idx := s.FromInt64([]int64{3, 0, 3}, 3)
		sel := nd{[]int64{3, 3}, nil}
		for _, i := range []int{3, 0, 3} {
			sel.v = append(sel.v, a.v[i*3:i*3+3]...)
		}
		expectND(t, "index_select", s.IndexSelect(x, 0, idx), sel, 0)
		expectND(t, "embedding", s.Embedding(x, s.FromInt64([]int64{3, 0, 3}, 1, 3)),
			nd{[]int64{1, 3, 3}, sel.v}, 0)

		gidx := []int64{2, 0, 1, 1, 0, 0, 2, 2}
		g := nd{[]int64{4, 2}, nil}
		for r := range 4 {
			for c := range 2 {
				g.v = append(g.v, a.at(r, int(gidx[r*2+c])))
			}
		}
		expectND(t, "gather", s.Gather(x, 1, s.FromInt64(gidx, 4, 2)), g, 0)

		// scatter_add: out[r][idx[r][c]] += src[r][c]
		src := rnd(31, 4, 2)
		sa := nd{a.shape, append([]float64{}, a.v...)}
		for r := range 4 {
			for c := range 2 {
				sa.v[r*3+int(gidx[r*2+c])] += src.v[r*2+c]
			}
		}
		expectND(t, "scatter_add", s.ScatterAdd(x, 1, s.FromInt64(gidx, 4, 2), s.fromND(src)), sa, 1e-6)

		// index_add / index_copy along dim 0 with rows [1, 3]
		rows := rnd(32, 2, 3)
		ia := nd{a.shape, append([]float64{}, a.v...)}
		ic := nd{a.shape, append([]float64{}, a.v...)}
		for k, r := range []int{1, 3} {
			for c := range 3 {
				ia.v[r*3+c] += rows.v[k*3+c]
				ic.v[r*3+c] = rows.v[k*3+c]
			}
		}
		ri := s.FromInt64([]int64{1, 3}, 2)
		expectND(t, "index_add", s.IndexAdd(x, 0, ri, s.fromND(rows)), ia, 1e-6)
		expectND(t, "index_copy", s.IndexCopy(x, 0, ri, s.fromND(rows)), ic, 0)

		mask := s.GtScalar(x, 0.5)
		expectND(t, "masked_fill", s.MaskedFill(x, mask, -9), mapND(a, func(v float64) float64 {
			if v > 0.5 {
				return -9
			}
			return v
		}), 0)

		oh := s.OneHot(s.FromInt64([]int64{2, 0, 1}, 3), 4)
		expectND(t, "one_hot", oh, nd{[]int64{3, 4}, []float64{0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0}}, 0)
		if oh.DType() != Int64 {
			t.Errorf("one_hot dtype %v, want int64", oh.DType())
		}

		v := s.FromFloat32([]float32{0.1, 0.9, 0.4, 0.7, 0.3, 0.2}, 2, 3)
		vals, ix := s.TopK(v, 2, -1)
		expectND(t, "topk.values", vals, nd{[]int64{2, 2}, []float64{0.9, 0.4, 0.7, 0.3}}, 1e-7)
		expectND(t, "topk.indices", ix, nd{[]int64{2, 2}, []float64{1, 2, 0, 1}}, 0)

		sq := rnd(33, 3, 3)
		tri := func(keep func(i, j int) bool) nd {
			out := nd{sq.shape, make([]float64, 9)}
			for i := range 3 {
				for j := range 3 {
					if keep(i, j) {
						out.v[i*3+j] = sq.v[i*3+j]
					}
				}
			}
			return out
		}
		expectND(t, "triu", s.Triu(s.fromND(sq), 1), tri(func(i, j int) bool { return j-i >= 1 }), 0)
		expectND(t, "tril", s.Tril(s.fromND(sq), 0), tri(func(i, j int) bool { return j <= i }), 0)
	})
}
