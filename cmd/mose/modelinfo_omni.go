package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
)

// isOmniDir reports whether dir's config.json is a Qwen2.5-Omni model's
// (false when there is none: the LLaMA path reports that).
func isOmniDir(dir string) (bool, error) {
	b, err := fsutil.ReadRegularLimit(filepath.Join(dir, "config.json"), fsutil.MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return omni.IsOmni(b), nil
}

// omniDumps are the values of model-info's --dump.
var omniDumps = []string{"towers", "positions"}

// omniModelInfo is model-info on a Qwen2.5-Omni dir: a summary of the
// thinker, and with inputs (processor outputs, see omni.ReadBatch) the
// logits of a forward through the towers and the decoder, written to out
// with the dumps asked for: towers (audio_embeds, image_embeds,
// video_embeds) and positions (position_ids, rope_deltas).
func omniModelInfo(cmd *cobra.Command, dir string, dt torch.DType, dev torch.Device, inputs, out, dump string) error {
	dumps := map[string]bool{}
	if dump != "" {
		for _, d := range strings.Split(dump, ",") {
			if !slices.Contains(omniDumps, d) {
				return badInput(fmt.Errorf("--dump: %q, want a comma-separated list of %s", d, strings.Join(omniDumps, ", ")))
			}
			dumps[d] = true
		}
	}
	if (out != "" || dump != "") && inputs == "" {
		return badInput(fmt.Errorf("model-info: --logits-out and --dump need --inputs on a Qwen2.5-Omni dir"))
	}
	if dump != "" && out == "" {
		return badInput(fmt.Errorf("model-info: --dump needs --logits-out"))
	}
	return torch.Run(func() error {
		start := time.Now()
		th, err := omni.Load(dir, model.Options{DType: dt, Device: dev})
		if err != nil {
			return badInput(err)
		}
		defer th.Close()
		c := th.Config
		w := cmd.OutOrStdout()
		layout := "thinker-only save"
		if c.Prefix != "" {
			layout = "full model, thinker read"
		}
		t, a, v := c.Text, c.Audio, c.Vision
		fmt.Fprintf(w, "model %s: Qwen2.5-Omni thinker (%s), %d parameters\n", dir, layout, c.ParamCount())
		fmt.Fprintf(w, "  decoder: %d layers, d=%d, heads %d/%d (kv), head_dim %d, vocab %d, mrope_section %v\n",
			t.NumLayers, t.HiddenSize, t.NumHeads, t.NumKVHeads, th.Decoder.Config.HeadDim, t.VocabSize, t.MRopeSection)
		fmt.Fprintf(w, "  audio tower: %d layers, d=%d, n_window %d; vision tower: %d blocks, d=%d, window %d, full attention in %v\n",
			a.Layers, a.DModel, a.NWindow, v.Depth, v.HiddenSize, v.WindowSize, v.FullAttBlockIndexes)
		fmt.Fprintf(w, "loaded in %.2fs as %v on %v\n", time.Since(start).Seconds(), dt, dev)
		if inputs == "" {
			return nil
		}
		s := torch.NewScope()
		defer s.Close()
		b, err := omni.ReadBatch(s, inputs)
		if err != nil {
			return badInput(err)
		}
		pos, err := c.RopeIndex(b.Inputs)
		if err != nil {
			return badInput(fmt.Errorf("%s: %w", inputs, err))
		}
		var emb omni.Embeds
		var logits *torch.Tensor
		err = torch.NoGrad(func() error {
			emb = th.Encode(s, b)
			logits = th.Logits(s, b.Inputs, emb) // (B,T,V)
			return s.Err()
		})
		if errors.Is(err, omni.ErrInputs) || errors.Is(err, omni.ErrConfig) {
			return badInput(fmt.Errorf("%s: %w", inputs, err))
		}
		if err != nil {
			return err
		}
		if err := printOmniTop(w, s, b.Inputs, logits); err != nil {
			return err
		}
		if out == "" {
			return nil
		}
		type named struct {
			name string
			t    *torch.Tensor
		}
		outs := []named{{"logits", logits}}
		if dumps["towers"] {
			outs = append(outs, named{"audio_embeds", emb.Audio}, named{"image_embeds", emb.Image}, named{"video_embeds", emb.Video})
		}
		var ts []safetensors.Tensor
		for _, n := range outs {
			if n.t == nil {
				continue
			}
			f, err := s.To(n.t, torch.Float32).Float32s()
			if err != nil {
				return err
			}
			ts = append(ts, safetensors.Tensor{Name: n.name, DType: safetensors.F32, Shape: n.t.Shape(), Data: safetensors.Float32sToBytes(f)})
		}
		if dumps["positions"] {
			B, T := int64(b.Inputs.B), int64(b.Inputs.T)
			flat := slices.Concat(pos.Pos[0], pos.Pos[1], pos.Pos[2])
			ts = append(ts,
				safetensors.Tensor{Name: "position_ids", DType: safetensors.I64, Shape: []int64{3, B, T}, Data: safetensors.Int64sToBytes(flat)},
				safetensors.Tensor{Name: "rope_deltas", DType: safetensors.I64, Shape: []int64{B, 1}, Data: safetensors.Int64sToBytes(pos.Delta)})
		}
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return safetensors.WriteFile(out, ts, map[string]string{"format": "pt"})
	})
}

// printOmniTop prints each row's top next tokens after its last real token.
func printOmniTop(w io.Writer, s *torch.Scope, in *omni.Inputs, logits *torch.Tensor) error {
	for r := range in.B {
		last := in.T - 1
		for in.Mask != nil && last > 0 && in.Mask[r*in.T+last] == 0 {
			last--
		}
		row := s.Flatten(s.Narrow(s.Narrow(logits, 0, int64(r), 1), 1, int64(last), 1), 0, -1)
		vals, idx := s.TopK(row, min(5, row.Size(0)), 0)
		if err := s.Err(); err != nil {
			return err
		}
		v, err := vals.Float32s()
		if err != nil {
			return err
		}
		i, err := idx.Int64s()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "row %d: top next tokens: ", r)
		for k := range v {
			fmt.Fprintf(w, "%d (%.4f) ", i[k], v[k])
		}
		fmt.Fprintln(w)
	}
	return nil
}
