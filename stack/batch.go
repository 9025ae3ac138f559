package stack

import (
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
	"github.com/mose-llm/mose/model"
)

// BatchTensors are one batch on the device.
type BatchTensors struct {
	In      *model.Inputs
	Pos     *torch.Tensor // (N) int64 flattened positions whose logits are scored
	Targets *torch.Tensor // (N) int64 token ids to predict there
}

// Tensors turns a data batch (plain Go slices) into device tensors.
func Tensors(s *torch.Scope, b *data.Batch, dev torch.Device) BatchTensors {
	B, T := int64(b.B), int64(b.T)
	mods := make([]int64, len(b.Modality))
	for i, m := range b.Modality {
		mods[i] = int64(m)
	}
	targets := make([]int64, len(b.TargetPos))
	for i, p := range b.TargetPos {
		targets[i] = b.Targets[p]
	}
	to := func(t *torch.Tensor) *torch.Tensor {
		if dev == torch.CPU {
			return t
		}
		return s.ToDevice(t, dev)
	}
	in := &model.Inputs{
		IDs:      to(s.FromInt64(b.IDs, B, T)),
		Modality: to(s.FromInt64(mods, B, T)),
	}
	for _, f := range b.Features {
		in.Features = append(in.Features, model.Features{
			Data:      to(s.FromFloat32(f.Data, B, int64(f.Tokens), int64(f.Dim))),
			Positions: to(s.FromInt64(f.Positions, int64(len(f.Positions)))),
		})
	}
	n := int64(len(b.TargetPos))
	return BatchTensors{In: in, Pos: to(s.FromInt64(b.TargetPos, n)), Targets: to(s.FromInt64(targets, n))}
}

// TokenCounts returns the batch's visual and non-visual (text + audio) tokens.
func TokenCounts(b *data.Batch) (visual, nonVisual int) {
	for _, m := range b.Modality {
		switch m {
		case modality.Visual:
			visual++
		case modality.Text, modality.Audio:
			nonVisual++
		}
	}
	return visual, nonVisual
}
