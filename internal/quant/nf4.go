package quant

import "github.com/mose-llm/mose/internal/torch"

// nf4Table is torchao's NF4 code table (4 decimals, as torchao writes it);
// it is converted to the weight's dtype before use, as torchao does.
var nf4Table = []float64{
	-1.0000, -0.6962, -0.5251, -0.3949, -0.2844, -0.1848, -0.0911, 0.0000,
	0.0796, 0.1609, 0.2461, 0.3379, 0.4407, 0.5626, 0.7230, 1.0000,
}

// codeChunk is how many weights are coded at a time: the distance table of a
// chunk is 16 times its size (torchao codes in chunks of 1024² too).
const codeChunk = 1 << 20

// blockAbsmax is torchao's get_block_absmax: the max |x| of each block.
// x: (N) -> (N/block)
func blockAbsmax(s *torch.Scope, x *torch.Tensor, block int64) *torch.Tensor {
	v, _ := s.MaxDim(s.Abs(s.View(x, x.Numel()/block, block)), 1, false)
	return v
}

// quantizeNF4 is torchao's NF4Tensor.from_tensor(w, 64, 256), op for op.
func quantizeNF4(s *torch.Scope, w *torch.Tensor) *Weight {
	t := s.Child()
	defer t.Close()
	dt, dev := w.DType(), w.Device()
	n := w.Numel()
	nb, groups := n/BlockSize, n/NF4Multiple
	flat := t.Reshape(w, n)

	// double_quantize_scalers: block absmax, centred on its mean, quantized
	// to int8 per group of 256 with factor 256 / (2·max|s − m|).
	sc := blockAbsmax(t, flat, BlockSize)
	mean := t.Mean(sc)
	centred := t.Sub(sc, mean)
	gmax := blockAbsmax(t, centred, ScalerBlockSize)
	gmaxE := t.Expand(t.Unsqueeze(gmax, -1), groups, ScalerBlockSize)
	factor := t.MulScalar(t.Reciprocal(t.MulScalar(gmaxE, 2)), 256) // Python's 256 / x is reciprocal(x) * 256
	q := t.Round(t.Mul(t.View(centred, groups, ScalerBlockSize), factor))
	scalers := t.To(t.Reshape(t.Clamp(q, -128, 127), nb), torch.Int8)
	factor1 := t.Contiguous(t.Reshape(t.Narrow(factor, 1, 0, 1), groups))

	// convert_to_norm_float_weight: nearest table entry of x / absmax
	// (first index on ties), two codes per byte, the first in the high nibble.
	table := t.To(t.ToDevice(t.FromFloat64(nf4Table, 16), dev), dt)
	scales := t.Expand(t.Unsqueeze(blockAbsmax(t, flat, BlockSize), -1), nb, BlockSize)
	scaled := t.Reshape(t.Div(t.View(flat, nb, BlockSize), scales), n)
	sixteen := t.ToDevice(t.FromInt64([]int64{16}, 1), dev)
	var packed []*torch.Tensor
	for start := int64(0); start < n && t.Err() == nil; start += codeChunk {
		c := t.Child()
		l := min(codeChunk, n-start)
		idx := nearestCode(c, c.Narrow(scaled, 0, start, l), table) // (l) int64
		pairs := c.View(idx, l/2, 2)
		b := c.Add(c.Mul(c.Narrow(pairs, 1, 0, 1), sixteen), c.Narrow(pairs, 1, 1, 1))
		p := c.To(c.Reshape(b, l/2), torch.Uint8)
		if c.Err() == nil {
			packed = append(packed, t.Own(c.Keep(p)))
		}
		c.Close()
	}
	var data *torch.Tensor
	if len(packed) == 1 {
		data = packed[0]
	} else {
		data = t.Cat(packed, 0)
	}
	pt := t.To(t.ToDevice(t.FromFloat64(pairTable(), 256, 2), dev), dt)
	if t.Err() != nil {
		return nil
	}
	return &Weight{
		Kind: NF4, Shape: w.Shape(), DType: dt,
		Data: s.Own(t.Keep(data)), Scalers: s.Own(t.Keep(scalers)), Factor: s.Own(t.Keep(factor1)),
		Mean: s.Own(t.Keep(mean)), pairs: s.Own(t.Keep(pt)),
	}
}

// nearestCode is torchao's nearest-entry search, argmin over the table of
// |v − table[i]| computed in v's dtype, first index on ties, evaluated on the
// two entries around v only: the entries are at least 0.0796 apart, so a
// farther entry's rounded distance can never reach the nearer neighbour's
// (monotone rounding keeps the order; a tie would need the two exact
// distances within one rounding step, 0.0156 at most for bfloat16), and a tie
// between the two neighbours goes to the lower index, as argmin's first
// occurrence does. TestNearestCode checks every bfloat16 value and the
// float32 values around every midpoint against the full search.
// v: (l), table: (16) -> (l) int64
func nearestCode(s *torch.Scope, v, table *torch.Tensor) *torch.Tensor {
	k := table.Numel()
	lo := s.Bucketize(v, s.Narrow(table, 0, 1, k-2)) // v in (table[lo], table[lo+1]]: lo in [0, k-2]
	hi := s.Add(lo, s.ToDevice(s.FromInt64([]int64{1}, 1), v.Device()))
	dlo := s.Abs(s.Sub(v, s.IndexSelect(table, 0, lo)))
	dhi := s.Abs(s.Sub(v, s.IndexSelect(table, 0, hi)))
	return s.Where(s.Gt(dlo, dhi), hi, lo)
}

// fullNearestCode is the search as torchao writes it, over all 16 entries:
// (l) -> (l) int64. It is the reference of nearestCode's test.
func fullNearestCode(s *torch.Scope, v, table *torch.Tensor) *torch.Tensor {
	_, idx := s.MinDim(s.Abs(s.Sub(s.Unsqueeze(v, -1), table)), -1, false)
	return idx
}

// pairTable lists, for every byte b, the NF4 values of its high and low
// nibbles: dequantizing is then one lookup per byte.
func pairTable() []float64 {
	p := make([]float64, 512)
	for b := range 256 {
		p[2*b], p[2*b+1] = nf4Table[b>>4], nf4Table[b&15]
	}
	return p
}

// dequantizeNF4 is torchao's get_original_weight: scalers q / f + m in the
// weight's dtype, times the NF4 value of each code.
// () -> (out, in)
func (w *Weight) dequantizeNF4(s *torch.Scope) *torch.Tensor {
	t := s.Child()
	defer t.Close()
	n := w.Numel()
	nb, groups := n/BlockSize, n/NF4Multiple
	vals := t.IndexSelect(w.pairs, 0, t.To(w.Data, torch.Int32)) // (N/2, 2)
	sc := t.Div(t.View(w.Scalers, groups, ScalerBlockSize), t.Unsqueeze(w.Factor, -1))
	sc = t.Add(t.Reshape(sc, nb), w.Mean) // (N/64)
	out := t.Mul(t.View(vals, nb, BlockSize), t.Unsqueeze(sc, -1))
	out = t.View(out, w.Shape...)
	if t.Err() != nil {
		return nil
	}
	return s.Own(t.Keep(out))
}
