package export

import (
	"fmt"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// DumpLogits computes, from a training checkpoint itself (its recipe,
// model and adapter.safetensors, not an export), the logits at every
// position of one sample of a manifest (default: the recipe's data.eval,
// else data.train), prompt and answer, feature tokens included. It returns
// the tensors scripts/checks/check_peft_export.py compares with PEFT on the
// export: input_ids (1,T) and modality (1,T) int64, logits (1,T,V) float32,
// and per modality input features.<name> (1,N,F) float32 and
// positions.<name> (N) int64 (the sequence positions its tokens replace);
// target_positions (A) and targets (A) int64: the answer positions the
// training loss is taken at and the tokens they must predict.
func DumpLogits(dir, manifest string, index int) ([]safetensors.Tensor, error) {
	cfg, st, err := checkpoint.Open(dir)
	if err != nil {
		return nil, err
	}
	if manifest == "" {
		manifest = cfg.Data.Eval
		if manifest == "" {
			manifest = cfg.Data.Train
		}
	}
	var out []safetensors.Tensor
	err = torch.Run(func() error {
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		if err := c.LoadCheckpoint(dir, st); err != nil {
			return err
		}
		ds, err := c.Open(manifest)
		if err != nil {
			return stack.DataErr(manifest, err)
		}
		if index < 0 || index >= ds.Len() {
			return fmt.Errorf("%w: --index %d: %s has %d samples", inputerr.ErrFlag, index, manifest, ds.Len())
		}
		b, err := ds.Batch([]int{index}, data.ModeTrain, nil)
		if err != nil {
			return stack.DataErr(manifest, err)
		}
		s := torch.NewScope()
		defer s.Close()
		bt := stack.Tensors(s, b, c.Dev)
		var logits []float32
		err = torch.NoGrad(func() error {
			l := c.Model.Logits(s, c.Model.Forward(s, bt.In, false), nil) // (1,T,V)
			logits, err = s.ToDevice(l, torch.CPU).Float32s()
			return err
		})
		if err != nil {
			return err
		}
		T := int64(b.T)
		mods := make([]int64, len(b.Modality))
		for i, m := range b.Modality {
			mods[i] = int64(m)
		}
		out = append(out,
			safetensors.Tensor{Name: "input_ids", DType: safetensors.I64, Shape: []int64{1, T}, Data: safetensors.Int64sToBytes(b.IDs)},
			safetensors.Tensor{Name: "modality", DType: safetensors.I64, Shape: []int64{1, T}, Data: safetensors.Int64sToBytes(mods)},
			safetensors.Tensor{Name: "logits", DType: safetensors.F32, Shape: []int64{1, T, int64(len(logits)) / T}, Data: safetensors.Float32sToBytes(logits)})
		targets := make([]int64, len(b.TargetPos))
		for i, p := range b.TargetPos {
			targets[i] = b.Targets[p]
		}
		out = append(out,
			safetensors.Tensor{Name: "target_positions", DType: safetensors.I64, Shape: []int64{int64(len(b.TargetPos))}, Data: safetensors.Int64sToBytes(b.TargetPos)},
			safetensors.Tensor{Name: "targets", DType: safetensors.I64, Shape: []int64{int64(len(targets))}, Data: safetensors.Int64sToBytes(targets)})
		for i, f := range b.Features {
			name := ds.Spec().Inputs[i].Name
			out = append(out,
				safetensors.Tensor{Name: "features." + name, DType: safetensors.F32, Shape: []int64{1, int64(f.Tokens), int64(f.Dim)}, Data: safetensors.Float32sToBytes(f.Data)},
				safetensors.Tensor{Name: "positions." + name, DType: safetensors.I64, Shape: []int64{int64(len(f.Positions))}, Data: safetensors.Int64sToBytes(f.Positions)})
		}
		return nil
	})
	return out, err
}
