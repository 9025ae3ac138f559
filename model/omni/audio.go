package omni

import (
	"fmt"
	"math"

	"github.com/mose-llm/mose/internal/torch"
)

// AudioFeatures are one batch of audios as the processor gives them: the
// log-mel input_features (A,num_mel_bins,L) and feature_attention_mask
// (A·L, 1 for a real frame), audio by audio in prompt order.
type AudioFeatures struct {
	Features *torch.Tensor // (A,mel,L) float
	Mask     []int64       // (A·L)
}

// Lens returns each audio's number of real frames (the mask's row sums).
func (f AudioFeatures) Lens() []int64 {
	if f.Features == nil {
		return nil
	}
	A, L := int(f.Features.Size(0)), int(f.Features.Size(2))
	out := make([]int64, A)
	for a := range A {
		for _, m := range f.Mask[a*L : (a+1)*L] {
			out[a] += m
		}
	}
	return out
}

// audioPlan is the host-side bookkeeping of one audio batch: the chunks of
// 2·n_window frames, their lengths before and after the stride-2
// convolution, and the indices that pack, unpack and pool them.
type audioPlan struct {
	frames   []int64 // (A·L) flat indices of the real frames, in order
	chunkLen []int64 // per chunk, mel frames
	afterLen []int64 // per chunk, frames after conv2: (len−1)/2+1
	lc, l2   int64   // the longest chunk, before and after conv2
	pack     []int64 // (C·lc) index into the real frames, or len(frames) for padding
	valid    []int64 // flat (C·l2) indices of the real frames after conv2
	pool     []int64 // first index of each averaged pair
}

// plan chunks the audios as chunk_and_pad_features, get_valid_indices and
// get_pool_indices do.
func (a AudioConfig) plan(f AudioFeatures) (*audioPlan, error) {
	sh := f.Features.Shape()
	if len(sh) != 3 || sh[1] != int64(a.NumMelBins) || int64(len(f.Mask)) != sh[0]*sh[2] {
		return nil, fmt.Errorf("%w: input_features of shape %v with %d mask values, want (A,%d,L) and A·L", ErrInputs, sh, len(f.Mask), a.NumMelBins)
	}
	p := &audioPlan{}
	for i, m := range f.Mask {
		switch m {
		case 1:
			p.frames = append(p.frames, int64(i))
		case 0:
		default:
			return nil, fmt.Errorf("%w: feature_attention_mask holds %d (want 0 or 1)", ErrInputs, m)
		}
	}
	w := int64(2 * a.NWindow)
	for _, n := range f.Lens() {
		if n < 1 {
			return nil, fmt.Errorf("%w: an audio without a real frame in feature_attention_mask", ErrInputs)
		}
		for k := int64(0); k < n; k += w {
			p.chunkLen = append(p.chunkLen, min(w, n-k))
		}
	}
	for _, n := range p.chunkLen {
		p.lc = max(p.lc, n)
		p.afterLen = append(p.afterLen, (n-1)/2+1)
	}
	p.l2 = (p.lc-1)/2 + 1
	start := int64(0)
	for c, n := range p.chunkLen {
		for j := range p.lc {
			if j < n {
				p.pack = append(p.pack, start+j)
			} else {
				p.pack = append(p.pack, int64(len(p.frames)))
			}
		}
		for j := range p.afterLen[c] {
			p.valid = append(p.valid, int64(c)*p.l2+j)
		}
		start += n
	}
	off := int64(0)
	for _, n := range f.Lens() {
		after := (n-1)/2 + 1
		for k := range floorDiv(after-2, 2) + 1 {
			p.pool = append(p.pool, off+2*k)
		}
		off += after
	}
	return p, nil
}

// AudioForward is the frozen audio tower (Qwen2_5OmniAudioEncoder): per
// chunk of 2·n_window mel frames, conv1 (k3) + GELU, conv2 (k3, stride 2)
// + GELU, sinusoidal positions restarting per chunk; encoder layers whose
// attention stays inside each chunk; then pairs of frames averaged over
// each whole audio, ln_post and the projection to the decoder's width.
// features (A,mel,L) -> (N,output_dim), N = Σ AudioTokens(len), in the run
// dtype, audio by audio.
func (th *Thinker) AudioForward(s *torch.Scope, f AudioFeatures) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	a := th.Config.Audio
	p, err := a.plan(f)
	if err != nil {
		s.Fail(err)
		return nil
	}
	w := th.Audio
	dt, dev := th.Decoder.DType, th.Decoder.Device
	D, M := int64(a.DModel), int64(a.NumMelBins)
	C := int64(len(p.chunkLen))
	idx := func(v []int64) *torch.Tensor { return th.toDev(s, s.FromInt64(v, int64(len(v)))) }

	x := s.To(f.Features, dt)
	if x != nil && x.Device() != dev {
		x = s.ToDevice(x, dev)
	}
	x = s.Reshape(s.Permute(x, 0, 2, 1), -1, M)                                  // (A·L,mel)
	x = s.IndexSelect(x, 0, idx(p.frames))                                       // (F,mel) real frames
	x = s.Cat([]*torch.Tensor{x, s.Zeros([]int64{1, M}, dt, dev)}, 0)            // (F+1,mel): a zero row pads
	x = s.Permute(s.View(s.IndexSelect(x, 0, idx(p.pack)), C, p.lc, M), 0, 2, 1) // (C,mel,lc)

	mask := make([]bool, 0, C*p.lc)
	for _, n := range p.chunkLen {
		for j := range p.lc {
			mask = append(mask, j < n)
		}
	}
	m := s.To(th.toDev(s, s.FromBool(mask, C, 1, p.lc)), dt)
	h := s.Mul(s.Gelu(s.Conv1d(x, w["conv1.weight"], w["conv1.bias"], 1, 1)), m)         // (C,D,lc)
	h = s.Transpose(s.Gelu(s.Conv1d(h, w["conv2.weight"], w["conv2.bias"], 2, 1)), 1, 2) // (C,l2,D)
	h = s.Add(h, s.To(sinusoids(s, p.l2, D, dev), dt))
	h = s.IndexSelect(s.Reshape(h, -1, D), 0, idx(p.valid)) // (N,D)

	keys := make([]bool, 0, C*p.l2)
	for _, n := range p.afterLen {
		for j := range p.l2 {
			keys = append(keys, j < n)
		}
	}
	ctx := &audioAttn{C: C, L: p.l2, valid: idx(p.valid), keys: th.toDev(s, s.FromBool(keys, C, 1, 1, p.l2))}
	for i := range a.Layers {
		h = layerScoped(s, h, i > 0, func(ls *torch.Scope) *torch.Tensor { return th.audioLayer(ls, i, h, ctx) })
	}
	next := make([]int64, len(p.pool))
	for i, j := range p.pool {
		next[i] = j + 1
	}
	h = s.DivScalar(s.Add(s.IndexSelect(h, 0, idx(p.pool)), s.IndexSelect(h, 0, idx(next))), 2) // (N/2,D)
	h = s.LayerNorm(h, w["ln_post.weight"], w["ln_post.bias"], 1e-5)
	return s.Linear(h, w["proj.weight"], w["proj.bias"]) // (N/2,output_dim)
}

// audioAttn is what the audio layers share: C chunks padded to L frames,
// the flat indices of the real frames, and the (C,1,1,L) key mask.
type audioAttn struct {
	C, L  int64
	valid *torch.Tensor
	keys  *torch.Tensor
}

// audioLayer is one Whisper encoder layer, pre-norm. x: (N,D) -> (N,D)
func (th *Thinker) audioLayer(s *torch.Scope, i int, x *torch.Tensor, c *audioAttn) *torch.Tensor {
	w := th.Audio
	a := th.Config.Audio
	p := fmt.Sprintf("layers.%d.", i)
	D, H := int64(a.DModel), int64(a.Heads)
	hd := D / H
	n := s.LayerNorm(x, w[p+"self_attn_layer_norm.weight"], w[p+"self_attn_layer_norm.bias"], 1e-5)
	split := func(t *torch.Tensor) *torch.Tensor { // (N,D) -> (C,H,L,hd)
		full := s.IndexCopy(s.Zeros([]int64{c.C * c.L, D}, t.DType(), t.Device()), 0, c.valid, t)
		return s.Transpose(s.View(full, c.C, c.L, H, hd), 1, 2)
	}
	q := split(s.Linear(n, w[p+"self_attn.q_proj.weight"], w[p+"self_attn.q_proj.bias"]))
	k := split(s.Linear(n, w[p+"self_attn.k_proj.weight"], nil))
	v := split(s.Linear(n, w[p+"self_attn.v_proj.weight"], w[p+"self_attn.v_proj.bias"]))
	o := s.Attention(q, k, v, c.keys, false, 0)                                // (C,H,L,hd)
	o = s.IndexSelect(s.Reshape(s.Transpose(o, 1, 2), c.C*c.L, D), 0, c.valid) // (N,D)
	x = s.Add(x, s.Linear(o, w[p+"self_attn.out_proj.weight"], w[p+"self_attn.out_proj.bias"]))
	n = s.LayerNorm(x, w[p+"final_layer_norm.weight"], w[p+"final_layer_norm.bias"], 1e-5)
	f := s.Linear(s.Gelu(s.Linear(n, w[p+"fc1.weight"], w[p+"fc1.bias"])), w[p+"fc2.weight"], w[p+"fc2.bias"])
	return s.Add(x, f)
}

// sinusoids is Whisper's position table as SinusoidsPositionEmbedding
// builds it in float32: [sin(t·g_i), cos(t·g_i)], g_i = exp(−i·ln(10⁴)/(D/2−1)).
// -> (n,D) float32
func sinusoids(s *torch.Scope, n, D int64, dev torch.Device) *torch.Tensor {
	inc := math.Log(10000) / float64(D/2-1)
	g := s.Exp(s.MulScalar(s.Arange(0, D/2, torch.Float32, dev), -inc)) // (D/2)
	t := s.Outer(s.Arange(0, n, torch.Float32, dev), g)                 // (n,D/2)
	return s.Cat([]*torch.Tensor{s.Sin(t), s.Cos(t)}, 1)
}

// toDev moves a host-made tensor to the decoder's device.
func (th *Thinker) toDev(s *torch.Scope, t *torch.Tensor) *torch.Tensor {
	if th.Decoder.Device == torch.CPU {
		return t
	}
	return s.ToDevice(t, th.Decoder.Device)
}

// layerScoped runs one tower layer on x in a scope of its own and returns
// its output, owned by s; the layer's intermediates are freed at once, and
// so is x when freeX (x is the previous layer's output, used by nothing
// else), so that a tower's forward holds one layer's working set, not all
// of them. The ops are the same: the values are too.
func layerScoped(s *torch.Scope, x *torch.Tensor, freeX bool, layer func(ls *torch.Scope) *torch.Tensor) *torch.Tensor {
	ls := s.Child()
	y := ls.Keep(layer(ls))
	ls.Close()
	if freeX && y != nil {
		x.Free()
	}
	if y == nil {
		return nil
	}
	return s.Own(y)
}
