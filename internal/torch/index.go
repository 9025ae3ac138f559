package torch

import (
	lib "github.com/sugarme/gotch/libtch"
)

// IndexSelect picks the entries idx (int64, 1-D) along dim.
func (s *Scope) IndexSelect(t *Tensor, dim int64, idx *Tensor) *Tensor {
	if !s.ok("index_select", t, idx) {
		return nil
	}
	lib.AtgIndexSelect(&s.out[0], t.c, dim, idx.c)
	return s.result("index_select")
}

// Gather: out[i][j] = t[i][idx[i][j]] for dim 1 (torch.gather).
func (s *Scope) Gather(t *Tensor, dim int64, idx *Tensor) *Tensor {
	if !s.ok("gather", t, idx) {
		return nil
	}
	lib.AtgGather(&s.out[0], t.c, dim, idx.c, 0)
	return s.result("gather")
}

// ScatterAdd returns a copy of t with src added at idx along dim (torch.scatter_add).
func (s *Scope) ScatterAdd(t *Tensor, dim int64, idx, src *Tensor) *Tensor {
	if !s.ok("scatter_add", t, idx, src) {
		return nil
	}
	lib.AtgScatterAdd(&s.out[0], t.c, dim, idx.c, src.c)
	return s.result("scatter_add")
}

// IndexAdd returns a copy of t with the slices of src added at positions idx
// (1-D int64) along dim.
func (s *Scope) IndexAdd(t *Tensor, dim int64, idx, src *Tensor) *Tensor {
	if !s.ok("index_add", t, idx, src) {
		return nil
	}
	lib.AtgIndexAdd(&s.out[0], t.c, dim, idx.c, src.c)
	return s.result("index_add")
}

// IndexCopy returns a copy of t with the slices at positions idx (1-D int64)
// along dim replaced by those of src. Gradients flow to both t and src.
func (s *Scope) IndexCopy(t *Tensor, dim int64, idx, src *Tensor) *Tensor {
	if !s.ok("index_copy", t, idx, src) {
		return nil
	}
	lib.AtgIndexCopy(&s.out[0], t.c, dim, idx.c, src.c)
	return s.result("index_copy")
}

// MaskedFill returns t with v where mask (bool, broadcastable) is true.
func (s *Scope) MaskedFill(t, mask *Tensor, v float64) *Tensor {
	if !s.ok("masked_fill", t, mask) {
		return nil
	}
	sc := lib.AtsFloat(v)
	lib.AtgMaskedFill(&s.out[0], t.c, mask.c, sc)
	lib.AtsFree(sc)
	return s.result("masked_fill")
}

// Where returns a where cond is true, else b (broadcasting).
func (s *Scope) Where(cond, a, b *Tensor) *Tensor {
	if !s.ok("where", cond, a, b) {
		return nil
	}
	lib.AtgWhereSelf(&s.out[0], cond.c, a.c, b.c)
	return s.result("where")
}

// OneHot encodes int64 class indices as int64 one-hot vectors: (…) -> (…,n).
func (s *Scope) OneHot(t *Tensor, n int64) *Tensor {
	if !s.ok("one_hot", t) {
		return nil
	}
	lib.AtgOneHot(&s.out[0], t.c, n)
	return s.result("one_hot")
}

// TopK returns the k largest values along dim and their int64 indices,
// sorted in descending order.
func (s *Scope) TopK(t *Tensor, k, dim int64) (values, indices *Tensor) {
	if !s.ok("topk", t) {
		return nil, nil
	}
	lib.AtgTopk(&s.out[0], t.c, k, dim, 1, 1)
	r := s.results("topk", 2)
	return r[0], r[1]
}

// Embedding looks up rows of w (V,D) at int64 ids (…) -> (…,D).
func (s *Scope) Embedding(w, ids *Tensor) *Tensor {
	if !s.ok("embedding", w, ids) {
		return nil
	}
	lib.AtgEmbedding(&s.out[0], w.c, ids.c, -1, 0, 0)
	return s.result("embedding")
}

// Triu keeps the elements on and above the diagonal (offset diag), zeroing the rest.
func (s *Scope) Triu(t *Tensor, diag int64) *Tensor {
	if !s.ok("triu", t) {
		return nil
	}
	lib.AtgTriu(&s.out[0], t.c, diag)
	return s.result("triu")
}

// Tril keeps the elements on and below the diagonal (offset diag), zeroing the rest.
func (s *Scope) Tril(t *Tensor, diag int64) *Tensor {
	if !s.ok("tril", t) {
		return nil
	}
	lib.AtgTril(&s.out[0], t.c, diag)
	return s.result("tril")
}
