package omni

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// visionPlan is the host-side bookkeeping of one batch of images or videos:
// each patch's (h, w) rotary position, the window order of the merged
// patches, and the attention segments (per frame for the full-attention
// blocks, per window for the others) in that order.
type visionPlan struct {
	hpos, wpos []int64 // per patch, in the processor's (block-major) order
	window     []int64 // merged-patch permutation into window order
	reverse    []int64 // its inverse
	frames     []int64 // full-attention segment lengths, in patches
	windows    []int64 // window segment lengths, in patches
}

// plan lays the grids out as transformers' get_vision_position_ids,
// get_vision_cu_seqlens and get_vision_window_index do.
func (v VisionConfig) plan(grids [][3]int64) (*visionPlan, error) {
	m := int64(v.SpatialMergeSize)
	ws := int64(v.WindowSize / v.SpatialMergeSize / v.PatchSize)
	if ws < 1 {
		return nil, fmt.Errorf("%w: vision window_size %d is below spatial_merge_size × patch_size", ErrConfig, v.WindowSize)
	}
	total := int64(0)
	for i, g := range grids {
		t, h, w := g[0], g[1], g[2]
		if t <= 0 || h <= 0 || w <= 0 || t > MaxGrid || h > MaxGrid || w > MaxGrid || h%m != 0 || w%m != 0 {
			return nil, fmt.Errorf("%w: grid %d %v: t, h, w must be in [1, %d], h and w multiples of %d", ErrInputs, i, g, MaxGrid, m)
		}
		if total += t * h * w; total > MaxVisionPatches {
			return nil, fmt.Errorf("%w: the grids hold more than %d vision patches (mose's bound)", ErrInputs, MaxVisionPatches)
		}
	}
	p := &visionPlan{}
	base := int64(0)
	for _, g := range grids {
		t, h, w := g[0], g[1], g[2]
		for range t {
			for bh := range h / m {
				for bw := range w / m {
					for ih := range m {
						for iw := range m {
							p.hpos = append(p.hpos, bh*m+ih)
							p.wpos = append(p.wpos, bw*m+iw)
						}
					}
				}
			}
			p.frames = append(p.frames, h*w)
		}
		lh, lw := h/m, w/m
		nh, nw := (lh+ws-lh%ws)/ws, (lw+ws-lw%ws)/ws // as transformers pads: a whole window when lh%ws == 0
		for ft := range t {
			for wh := range nh {
				for ww := range nw {
					n := int64(0)
					for y := wh * ws; y < min((wh+1)*ws, lh); y++ {
						for x := ww * ws; x < min((ww+1)*ws, lw); x++ {
							p.window = append(p.window, base+ft*lh*lw+y*lw+x)
							n++
						}
					}
					if n > 0 {
						p.windows = append(p.windows, n*m*m)
					}
				}
			}
		}
		base += t * lh * lw
	}
	p.reverse = make([]int64, len(p.window))
	for i, j := range p.window {
		p.reverse[j] = int64(i)
	}
	return p, nil
}

// MaxVisionPatches bounds the patches of one vision batch (about 30 minutes
// of video at the processor's defaults).
const MaxVisionPatches = 1 << 22

// VisionForward is the frozen vision tower (Qwen2_5OmniVisionEncoder):
// the 3D patch embedding; the merged patches put in window order; the
// blocks (RMSNorm, attention with 2D rotary positions, within each frame
// for the blocks of fullatt_block_indexes and within each window for the
// others, RMSNorm, gated MLP); then the 2×2 merger and the original order
// back. pixels (N, C·tp·p·p) with grids (t,h,w) in patches ->
// (N/merge², out_hidden_size) in the run dtype, image by image.
func (th *Thinker) VisionForward(s *torch.Scope, pixels *torch.Tensor, grids [][3]int64) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	v := th.Config.Vision
	p, err := v.plan(grids)
	if err != nil {
		s.Fail(err)
		return nil
	}
	C, TP, P := int64(v.InChannels), int64(v.TemporalPatchSize), int64(v.PatchSize)
	N, Hd := int64(len(p.hpos)), int64(v.HiddenSize)
	if sh := pixels.Shape(); len(sh) != 2 || sh[0] != N || sh[1] != C*TP*P*P {
		s.Fail(fmt.Errorf("%w: pixel values of shape %v for grids %v, want (%d,%d)", ErrInputs, sh, grids, N, C*TP*P*P))
		return nil
	}
	w := th.Vision
	dt, dev := th.Decoder.DType, th.Decoder.Device
	U := int64(v.SpatialMergeSize * v.SpatialMergeSize)
	idx := func(x []int64) *torch.Tensor { return th.toDev(s, s.FromInt64(x, int64(len(x)))) }
	order := func(x *torch.Tensor) *torch.Tensor { // (N,F) -> (N,F) in window order
		F := x.Size(-1)
		return s.Reshape(s.IndexSelect(s.View(x, N/U, U, F), 0, idx(p.window)), N, F)
	}

	x := s.To(pixels, dt)
	if x != nil && x.Device() != dev {
		x = s.ToDevice(x, dev)
	}
	x = s.View(s.Conv3d(s.View(x, N, C, TP, P, P), w["patch_embed.proj.weight"], nil, [3]int64{TP, P, P}), N, Hd) // (N,Hd)
	x = order(x)
	cos, sin := th.visionRotary(s, p, order)
	segs := map[bool]*segments{true: newSegments(s, th, p.frames), false: newSegments(s, th, p.windows)}
	for i := range v.Depth {
		full := false
		for _, j := range v.FullAttBlockIndexes {
			full = full || j == i
		}
		x = layerScoped(s, x, i > 0, func(ls *torch.Scope) *torch.Tensor { return th.visionBlock(ls, i, x, cos, sin, segs[full]) })
	}
	x = model.RMSNorm(s, x, w["merger.ln_q.weight"], 1e-6)
	x = s.View(x, N/U, U*Hd)
	x = s.Linear(s.Gelu(s.Linear(x, w["merger.mlp.0.weight"], w["merger.mlp.0.bias"])), w["merger.mlp.2.weight"], w["merger.mlp.2.bias"])
	return s.IndexSelect(x, 0, idx(p.reverse)) // (N/U,out)
}

// visionRotary builds the 2D rotary tables as Qwen2_5OmniVisionRotaryEmbedding:
// angles h·f and w·f for the head_dim/4 frequencies f of θ over head_dim/2,
// laid out [h, w, h, w], in window order. -> cos, sin (N,1,hd) float32
func (th *Thinker) visionRotary(s *torch.Scope, p *visionPlan, order func(*torch.Tensor) *torch.Tensor) (cos, sin *torch.Tensor) {
	v := th.Config.Vision
	hd := v.HiddenSize / v.NumHeads
	inv, err := model.RopeInvFreq(v.RopeTheta, hd/2)
	if err != nil {
		s.Fail(err)
		return nil, nil
	}
	N := int64(len(p.hpos))
	f := s.FromFloat32(inv, int64(len(inv)))
	h := s.Mul(s.To(s.FromInt64(p.hpos, N, 1), torch.Float32), f) // (N,hd/4)
	x := s.Mul(s.To(s.FromInt64(p.wpos, N, 1), torch.Float32), f)
	hw := s.Cat([]*torch.Tensor{h, x}, -1)
	ang := order(th.toDev(s, s.Cat([]*torch.Tensor{hw, hw}, -1))) // (N,hd) on the device, in window order
	return s.Unsqueeze(s.Cos(ang), 1), s.Unsqueeze(s.Sin(ang), 1)
}

// segments is attention confined to consecutive runs of tokens: the runs
// padded into a batch (S,L), with the flat indices of the real tokens and
// a (S,1,1,L) key mask.
type segments struct {
	S, L  int64
	valid *torch.Tensor
	keys  *torch.Tensor
}

func newSegments(s *torch.Scope, th *Thinker, lens []int64) *segments {
	g := &segments{S: int64(len(lens))}
	for _, n := range lens {
		g.L = max(g.L, n)
	}
	var valid []int64
	keys := make([]bool, 0, g.S*g.L)
	for i, n := range lens {
		for j := range g.L {
			if j < n {
				valid = append(valid, int64(i)*g.L+j)
			}
			keys = append(keys, j < n)
		}
	}
	g.valid = th.toDev(s, s.FromInt64(valid, int64(len(valid))))
	g.keys = th.toDev(s, s.FromBool(keys, g.S, 1, 1, g.L))
	return g
}

// attend runs attention within each segment. q, k, v: (N,H,hd) -> (N,H·hd)
func (g *segments) attend(s *torch.Scope, q, k, v *torch.Tensor) *torch.Tensor {
	H, hd := q.Size(1), q.Size(2)
	pack := func(t *torch.Tensor) *torch.Tensor { // (N,H,hd) -> (S,H,L,hd)
		flat := s.Reshape(t, -1, H*hd)
		full := s.IndexCopy(s.Zeros([]int64{g.S * g.L, H * hd}, t.DType(), t.Device()), 0, g.valid, flat)
		return s.Transpose(s.View(full, g.S, g.L, H, hd), 1, 2)
	}
	o := s.Attention(pack(q), pack(k), pack(v), g.keys, false, 0)                    // (S,H,L,hd)
	return s.IndexSelect(s.Reshape(s.Transpose(o, 1, 2), g.S*g.L, H*hd), 0, g.valid) // (N,H·hd)
}

// visionBlock is one ViT block. x: (N,Hd) -> (N,Hd)
func (th *Thinker) visionBlock(s *torch.Scope, i int, x, cos, sin *torch.Tensor, g *segments) *torch.Tensor {
	v := th.Config.Vision
	w := th.Vision
	p := fmt.Sprintf("blocks.%d.", i)
	N, H := x.Size(0), int64(v.NumHeads)
	hd := int64(v.HiddenSize) / H
	n := model.RMSNorm(s, x, w[p+"norm1.weight"], 1e-6)
	proj := func(name string) *torch.Tensor {
		return s.View(s.Linear(n, w[p+"attn."+name+".weight"], w[p+"attn."+name+".bias"]), N, H, hd)
	}
	q, k := rotateVision(s, proj("q"), cos, sin, hd), rotateVision(s, proj("k"), cos, sin, hd)
	o := g.attend(s, q, k, proj("v"))
	x = s.Add(x, s.Linear(o, w[p+"attn.proj.weight"], w[p+"attn.proj.bias"]))
	n = model.RMSNorm(s, x, w[p+"norm2.weight"], 1e-6)
	gate := s.Silu(s.Linear(n, w[p+"mlp.gate_proj.weight"], w[p+"mlp.gate_proj.bias"]))
	up := s.Linear(n, w[p+"mlp.up_proj.weight"], w[p+"mlp.up_proj.bias"])
	return s.Add(x, s.Linear(s.Mul(gate, up), w[p+"mlp.down_proj.weight"], w[p+"mlp.down_proj.bias"]))
}

// rotateVision applies the rotary tables in float32, as
// apply_rotary_pos_emb_vision, and casts back. x: (N,H,hd) -> (N,H,hd)
func rotateVision(s *torch.Scope, x, cos, sin *torch.Tensor, hd int64) *torch.Tensor {
	dt := x.DType()
	x32 := s.To(x, torch.Float32)
	rot := s.Cat([]*torch.Tensor{s.Neg(s.Narrow(x32, -1, hd/2, hd/2)), s.Narrow(x32, -1, 0, hd/2)}, -1)
	return s.To(s.Add(s.Mul(x32, cos), s.Mul(rot, sin)), dt)
}
