package export

import (
	"fmt"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/procout"
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
	ts, _, err := DumpLogitsMeta(dir, manifest, index)
	return ts, err
}

// DumpLogitsMeta is DumpLogits with the metadata to write with the tensors.
// On a Qwen2.5-Omni thinker the sample's tensors are its processor outputs
// under transformers' names, the answer appended to input_ids (input_ids,
// attention_mask, pixel_values, image_grid_thw, pixel_values_videos,
// video_grid_thw, video_second_per_grid, input_features,
// feature_attention_mask, and use_audio_in_video in the metadata), so that
// transformers' thinker runs on the file as it is, then logits, modality,
// target_positions and targets.
func DumpLogitsMeta(dir, manifest string, index int) ([]safetensors.Tensor, map[string]string, error) {
	cfg, st, err := checkpoint.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	if manifest == "" {
		manifest = cfg.Data.Eval
		if manifest == "" {
			manifest = cfg.Data.Train
		}
	}
	var out []safetensors.Tensor
	meta := map[string]string{}
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
		var logits []float32
		if c.Omni != nil {
			err = torch.NoGrad(func() error {
				_, p, x := c.OmniBegin(s, b, false)
				l := c.Model.Logits(s, p.Run(s, x), nil) // (1,T,V)
				logits, err = s.ToDevice(l, torch.CPU).Float32s()
				if err == nil {
					err = s.Err()
				}
				return err
			})
			if err != nil {
				return err
			}
			if b.Media.Deferred { // the towers' outputs were cached: the dump still writes the media
				if b.Media, err = b.Media.Row(0); err != nil {
					return stack.DataErr(manifest, err)
				}
			}
			out = omniDump(b, logits)
			meta["use_audio_in_video"] = fmt.Sprint(b.Media.UseAudioInVideo)
			return nil
		}
		bt := stack.Tensors(s, b, c.Dev)
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
	return out, meta, err
}

// omniDump is an omni batch of one row with its logits, under the
// processor's names (see DumpLogitsMeta).
func omniDump(b *data.Batch, logits []float32) []safetensors.Tensor {
	T := int64(b.T)
	i64 := func(name string, v []int64, shape ...int64) safetensors.Tensor {
		return safetensors.Tensor{Name: name, DType: safetensors.I64, Shape: shape, Data: safetensors.Int64sToBytes(v)}
	}
	f32 := func(name string, v []float32, shape ...int64) safetensors.Tensor {
		return safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: shape, Data: safetensors.Float32sToBytes(v)}
	}
	grids := func(g [][3]int64) []int64 {
		var v []int64
		for _, x := range g {
			v = append(v, x[:]...)
		}
		return v
	}
	mods := make([]int64, len(b.Modality))
	for i, m := range b.Modality {
		mods[i] = int64(m)
	}
	mask := make([]int64, b.T)
	for t := range b.Lengths[0] {
		mask[t] = 1
	}
	targets := make([]int64, len(b.TargetPos))
	for i, p := range b.TargetPos {
		targets[i] = b.Targets[p]
	}
	out := []safetensors.Tensor{i64("input_ids", b.IDs, 1, T), i64("modality", mods, 1, T),
		f32("logits", logits, 1, T, int64(len(logits))/T), i64("attention_mask", mask, 1, T),
		i64("target_positions", b.TargetPos, int64(len(b.TargetPos))), i64("targets", targets, int64(len(targets)))}
	m := b.Media
	if m.Pixels != nil {
		out = append(out, f32(procout.KeyPixelValues, m.Pixels, int64(len(m.Pixels)/m.PixelDim), int64(m.PixelDim)),
			i64(procout.KeyImageGridTHW, grids(m.ImageGridTHW), int64(len(m.ImageGridTHW)), 3))
	}
	if m.Videos != nil {
		out = append(out, f32(procout.KeyPixelValuesVideos, m.Videos, int64(len(m.Videos)/m.VideoDim), int64(m.VideoDim)),
			i64(procout.KeyVideoGridTHW, grids(m.VideoGridTHW), int64(len(m.VideoGridTHW)), 3),
			f32(procout.KeyVideoSecondPerGrid, m.VideoSecondPerGrid, int64(len(m.VideoSecondPerGrid))))
	}
	if m.Features != nil {
		A := int64(len(m.AudioLens))
		out = append(out, f32(procout.KeyInputFeatures, m.Features, A, int64(m.Mel), int64(m.Frames)),
			i64(procout.KeyFeatureAttentionMask, m.FeatureMask(), A, int64(m.Frames)))
	}
	return out
}
