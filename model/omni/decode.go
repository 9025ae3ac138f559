package omni

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
)

// Modality returns each token's modality id, the routing MoSE uses: image
// and video placeholders are visual, audio placeholders audio, padding pad,
// and every other token (special tokens included) text. (B·T)
func (c Config) Modality(in *Inputs) []int64 {
	out := make([]int64, len(in.IDs))
	for i, id := range in.IDs {
		switch {
		case in.Mask != nil && in.Mask[i] == 0:
			out[i] = modality.Pad
		case id == int64(c.Tokens.Image) || id == int64(c.Tokens.Video):
			out[i] = modality.Visual
		case id == int64(c.Tokens.Audio):
			out[i] = modality.Audio
		default:
			out[i] = modality.Text
		}
	}
	return out
}

// Prefill runs a prompt into c, a cache of the decoder (th.Decoder.NewCache
// with in.B rows), with its TMRoPE positions, and returns the final hidden
// states and each row's rope delta for Decode. Rows are right-padded; the
// cache orders tokens by their index, so a row's next token is at text
// position c.Next(row). in (B,T) -> (B,T,D)
func (th *Thinker) Prefill(s *torch.Scope, c *model.Cache, in *Inputs, emb Embeds) (*torch.Tensor, []int64) {
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
	x := th.embed(s, in, ids, emb)
	cos, sin := th.rotary(s, pos, int64(in.B), int64(in.T))
	var valid []bool
	if in.Mask != nil {
		valid = make([]bool, len(in.Mask))
		for i, m := range in.Mask {
			valid[i] = m == 1
		}
	}
	st := &model.Step{In: th.inputs(s, in, ids), Valid: valid, Embeds: x, Cos: cos, Sin: sin}
	return th.Decoder.Extend(s, c, st), pos.Delta
}

// Decode extends c by one token per row, ids (B), each at rotary position
// c.Next(row) + delta[row] on every axis, as transformers continues after
// its multimodal prompt. -> (B,1,D)
func (th *Thinker) Decode(s *torch.Scope, c *model.Cache, ids, delta []int64) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	in := &Inputs{B: len(ids), T: 1, IDs: ids}
	return th.Continue(s, c, &model.Step{In: th.inputs(s, in, th.ids(s, ids, len(ids), 1))}, delta)
}

// Continue extends c with a block of text tokens after a prompt that
// Prefill ran into it: st as the decoder's Extend takes it (padding,
// positions, groups, NoAppend), each token's rotary position its position
// (st.Positions, or where Extend puts it by default) + delta[row] on every
// axis, delta Prefill's rope deltas. st.Cos and st.Sin must be unset.
// st.In (B,T) -> (B,T,D)
func (th *Thinker) Continue(s *torch.Scope, c *model.Cache, st *model.Step, delta []int64) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	if st.In == nil || st.In.IDs == nil || st.Cos != nil || st.Sin != nil {
		s.Fail(fmt.Errorf("%w: Continue needs a step with ids and without rotary tables", ErrInputs))
		return nil
	}
	B, T := int(st.In.IDs.Size(0)), int(st.In.IDs.Size(1))
	if len(delta) != B || (st.Positions != nil && len(st.Positions) != B*T) || (st.Valid != nil && len(st.Valid) != B*T) {
		s.Fail(fmt.Errorf("%w: a (%d,%d) step with %d rope deltas, %d positions, %d valid flags", ErrInputs, B, T, len(delta), len(st.Positions), len(st.Valid)))
		return nil
	}
	var pos Positions
	for a := range pos.Pos {
		pos.Pos[a] = make([]int64, B*T)
	}
	for b := range B {
		p := c.Next(b) // Extend's default: the row's real tokens in order
		for t := range T {
			i := b*T + t
			at := p
			if st.Positions != nil {
				at = st.Positions[i]
			} else if st.Valid == nil || st.Valid[i] {
				p++
			}
			if at+delta[b] < 0 {
				s.Fail(fmt.Errorf("%w: row %d: rope delta %d gives a negative position", ErrInputs, b, delta[b]))
				return nil
			}
			for a := range pos.Pos {
				pos.Pos[a][i] = at + delta[b]
			}
		}
	}
	cp := *st
	cp.Cos, cp.Sin = th.rotary(s, pos, int64(B), int64(T))
	return th.Decoder.Extend(s, c, &cp)
}

// ids makes the (B,T) id tensor on the decoder's device.
func (th *Thinker) ids(s *torch.Scope, v []int64, B, T int) *torch.Tensor {
	t := s.FromInt64(v, int64(B), int64(T))
	if th.Decoder.Device != torch.CPU {
		t = s.ToDevice(t, th.Decoder.Device)
	}
	return t
}

// inputs is the decoder's view of a batch: ids and modality ids (B,T).
func (th *Thinker) inputs(s *torch.Scope, in *Inputs, ids *torch.Tensor) *model.Inputs {
	return &model.Inputs{IDs: ids, Modality: th.ids(s, th.Config.Modality(in), in.B, in.T)}
}
