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
	B := len(ids)
	if len(delta) != B {
		s.Fail(fmt.Errorf("%w: %d tokens for %d rope deltas", ErrInputs, B, len(delta)))
		return nil
	}
	var pos Positions
	for a := range pos.Pos {
		pos.Pos[a] = make([]int64, B)
		for b := range B {
			pos.Pos[a][b] = c.Next(b) + delta[b]
		}
	}
	for b := range B {
		if pos.Pos[0][b] < 0 {
			s.Fail(fmt.Errorf("%w: row %d: rope delta %d gives a negative position", ErrInputs, b, delta[b]))
			return nil
		}
	}
	in := &Inputs{B: B, T: 1, IDs: ids}
	t := th.ids(s, ids, B, 1)
	cos, sin := th.rotary(s, pos, int64(B), 1)
	st := &model.Step{In: th.inputs(s, in, t), Cos: cos, Sin: sin}
	return th.Decoder.Extend(s, c, st)
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
