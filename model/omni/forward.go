package omni

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// Embeds are the encoder outputs placed at the placeholder tokens: row i
// of Audio goes to the i-th <|AUDIO|> token of the batch (row-major), and
// likewise for Image and Video, as transformers' masked_scatter places the
// towers' outputs. Each is (N,D) in any float dtype, or nil when the batch
// has no such token.
type Embeds struct {
	Audio, Image, Video *torch.Tensor
}

// Forward runs the thinker's decoder over a batch with the encoder outputs
// given, and returns the final normalised hidden states; train turns the
// adapters' dropout and gate noise on. Rows must be right-padded (real
// tokens first). in (B,T) -> (B,T,D)
func (th *Thinker) Forward(s *torch.Scope, in *Inputs, emb Embeds, train bool) *torch.Tensor {
	p, x := th.Begin(s, in, emb, train)
	if p == nil {
		return nil
	}
	return p.Run(s, x)
}

// Begin prepares a forward over a batch with the encoder outputs given, as
// Forward makes it, for callers that run the decoder layers themselves
// (per-layer seeding, activation checkpointing): the pass (TMRoPE's
// rotary tables, the routing by token modality) and the input embeddings
// x (B,T,D), the encoder outputs scattered in. Rows must be right-padded.
// On an error (recorded in s) p is nil.
func (th *Thinker) Begin(s *torch.Scope, in *Inputs, emb Embeds, train bool) (p *model.Pass, x *torch.Tensor) {
	if s.Err() != nil {
		return nil, nil
	}
	if err := checkRightPadded(in); err != nil {
		s.Fail(err)
		return nil, nil
	}
	pos, err := th.Config.RopeIndex(in)
	if err != nil {
		s.Fail(err)
		return nil, nil
	}
	ids := th.ids(s, in.IDs, in.B, in.T)
	x = th.embed(s, in, ids, emb) // (B,T,D)
	cos, sin := th.rotary(s, pos, int64(in.B), int64(in.T))
	p = th.Decoder.BeginRotary(s, th.inputs(s, in, ids), train, cos, sin)
	if s.Err() != nil {
		return nil, nil
	}
	return p, x
}

// Logits is an inference Forward followed by the head: (B,T) -> (B,T,V) float32.
func (th *Thinker) Logits(s *torch.Scope, in *Inputs, emb Embeds) *torch.Tensor {
	return th.Decoder.Logits(s, th.Forward(s, in, emb, false), nil)
}

// checkRightPadded refuses rows with padding before a real token: the
// decoder's causal attention would let real tokens see it.
func checkRightPadded(in *Inputs) error {
	if in.Mask == nil {
		return nil
	}
	for b := range in.B {
		pad := false
		for t := range in.T {
			switch in.Mask[b*in.T+t] {
			case 0:
				pad = true
			case 1:
				if pad {
					return fmt.Errorf("%w: attention_mask row %d: padding before a real token (left padding is not supported; pad on the right)", ErrInputs, b)
				}
			default:
				return fmt.Errorf("%w: attention_mask row %d holds %d (want 0 or 1)", ErrInputs, b, in.Mask[b*in.T+t])
			}
		}
	}
	return nil
}

// embed is the token embeddings with the encoder outputs scattered in.
// ids (B,T) -> (B,T,D) in the run dtype.
func (th *Thinker) embed(s *torch.Scope, in *Inputs, ids *torch.Tensor, emb Embeds) *torch.Tensor {
	d := th.Decoder
	x := s.Embedding(d.EmbedTokens, ids) // (B,T,D)
	D := int64(th.Config.Text.HiddenSize)
	flat := s.View(x, -1, D) // (B·T,D)
	tok := th.Config.Tokens
	for _, m := range []struct {
		name string
		id   int
		e    *torch.Tensor
	}{{"audio", tok.Audio, emb.Audio}, {"image", tok.Image, emb.Image}, {"video", tok.Video, emb.Video}} {
		var at []int64
		for i, v := range in.IDs {
			if v == int64(m.id) {
				at = append(at, int64(i))
			}
		}
		n := int64(0)
		if m.e != nil {
			if sh := m.e.Shape(); len(sh) != 2 || sh[1] != D {
				s.Fail(fmt.Errorf("%w: %s embeddings of shape %v, want (N,%d)", ErrInputs, m.name, sh, D))
				return nil
			}
			n = m.e.Size(0)
		}
		if n != int64(len(at)) {
			s.Fail(fmt.Errorf("%w: %d %s tokens in input_ids (id %d) but %d %s embeddings", ErrInputs, len(at), m.name, m.id, n, m.name))
			return nil
		}
		if n == 0 {
			continue
		}
		e := m.e
		if e.DType() != d.DType {
			e = s.To(e, d.DType)
		}
		if e.Device() != d.Device {
			e = s.ToDevice(e, d.Device)
		}
		idx := s.FromInt64(at, n)
		if d.Device != torch.CPU {
			idx = s.ToDevice(idx, d.Device)
		}
		flat = s.IndexCopy(flat, 0, idx, e)
	}
	return s.View(flat, int64(in.B), int64(in.T), D)
}

// rotary builds TMRoPE's tables as Qwen2_5OmniRotaryEmbedding does: per
// axis, angles pos ⊗ inv_freq in float32; the head_dim/2 frequencies split
// into mrope_section chunks, chunk i taken from axis i mod 3; then
// duplicated as [f, f]. pos (3,B,T) -> cos, sin (B,1,T,head_dim) in the
// run dtype.
func (th *Thinker) rotary(s *torch.Scope, pos Positions, B, T int64) (cos, sin *torch.Tensor) {
	d := th.Decoder
	inv := d.InvFreq()
	flat := make([]int64, 0, 3*B*T)
	for a := range 3 {
		flat = append(flat, pos.Pos[a]...)
	}
	p := s.To(s.FromInt64(flat, 3, B, T, 1), torch.Float32) // (3,B,T,1)
	f := s.Mul(p, s.FromFloat32(inv, int64(len(inv))))      // (3,B,T,hd/2)
	if d.Device != torch.CPU {
		f = s.ToDevice(f, d.Device)
	}
	table := func(t *torch.Tensor) *torch.Tensor {
		var parts []*torch.Tensor
		off := int64(0)
		for i, n := range th.Config.Text.MRopeSection {
			axis := s.Squeeze(s.Narrow(t, 0, int64(i%3), 1), 0) // (B,T,hd/2)
			parts = append(parts, s.Narrow(axis, -1, off, int64(n)))
			off += int64(n)
		}
		h := s.Cat(parts, -1) // (B,T,hd/2)
		full := s.Cat([]*torch.Tensor{h, h}, -1)
		return s.Unsqueeze(s.To(full, d.DType), 1) // (B,1,T,hd)
	}
	return table(s.Cos(f)), table(s.Sin(f))
}
