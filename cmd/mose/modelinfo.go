package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/export"
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

func newModelInfoCmd() *cobra.Command {
	var dir, dtype, device, text, logitsOut, adapter, inputs, dump, quantize, dumpQ string
	cmd := &cobra.Command{
		Use:   "model-info --model DIR",
		Short: "Load a model dir and print its shape, size and load time",
		Long: `model-info loads a HF-layout model dir the way training does (checking every
tensor against config.json) and prints a summary. With --text it also runs the
decoder on the tokenized text and prints the top next-token logits; --logits-out
writes all logits to a safetensors file (scripts/checks/check_model_dir.py compares them
with transformers). --quantize nf4|int8 loads the decoder linears quantized, as
model.quantize does; --dump-quantized TENSOR=FILE then writes that weight's
quantized form (torchao's names) and its dequantized value to FILE.

On a Qwen2.5-Omni dir (a full model or a thinker-only save) it loads the thinker;
--inputs FILE.safetensors (transformers' processor outputs under their own names,
use_audio_in_video in the metadata) runs the towers and the decoder and
--logits-out OUT writes logits, with --dump towers,positions also audio_embeds,
image_embeds, video_embeds, position_ids and rope_deltas.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return badInput(fmt.Errorf("model-info: --model is required"))
			}
			dt, err := torch.ParseDType(dtype)
			if err != nil {
				return badInput(fmt.Errorf("--dtype: %w", err))
			}
			dev, err := torch.ParseDevice(device)
			if err != nil {
				return badInput(fmt.Errorf("--device: %w", err))
			}
			if isOmni, err := isOmniDir(dir); err != nil {
				return badInput(err)
			} else if isOmni {
				if text != "" || adapter != "" || quantize != "none" || dumpQ != "" {
					return badInput(fmt.Errorf("model-info: --text, --adapter, --quantize and --dump-quantized are not supported on a Qwen2.5-Omni dir (give --inputs)"))
				}
				return omniModelInfo(cmd, dir, dt, dev, inputs, logitsOut, dump)
			}
			if inputs != "" || dump != "" {
				return badInput(fmt.Errorf("model-info: --inputs and --dump need a Qwen2.5-Omni dir"))
			}
			qk, err := quant.ParseKind(quantize)
			if err != nil {
				return badInput(fmt.Errorf("--quantize: %w", err))
			}
			dumpName, dumpFile, dumping := strings.Cut(dumpQ, "=")
			if dumpQ != "" && (!dumping || dumpName == "" || dumpFile == "") {
				return badInput(fmt.Errorf("--dump-quantized %q: want TENSOR=FILE", dumpQ))
			}
			if dumpQ != "" && qk == quant.None {
				return badInput(fmt.Errorf("--dump-quantized needs --quantize nf4 or int8"))
			}
			var ids []int32
			if text != "" {
				tok, err := tokenizer.Load(filepath.Join(dir, "tokenizer.json"))
				if err != nil {
					return badInput(err)
				}
				if ids, err = tok.EncodeWithSpecial(text); err != nil {
					return badInput(err)
				}
			}
			return torch.Run(func() error {
				start := time.Now()
				opt := model.Options{DType: dt, Device: dev, Quantize: qk}
				m, closeFn, err := loadModel(dir, adapter, opt)
				if err != nil {
					return badInput(err)
				}
				defer closeFn()
				c := m.Config
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "model %s: %s, %d layers, d=%d, heads %d/%d (kv), head_dim %d, vocab %d, %d parameters\n",
					dir, c.ModelType, c.NumLayers, c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.VocabSize, c.ParamCount())
				for _, p := range c.Projectors {
					fmt.Fprintf(out, "  projector %s: %s %d -> %d\n", p.Name, p.Kind, p.Dim, c.HiddenSize)
				}
				fmt.Fprintf(out, "loaded in %.2fs as %v on %v\n", time.Since(start).Seconds(), dt, dev)
				if qk != quant.None {
					fmt.Fprintf(out, "  decoder linears stored %s: %.1f MiB\n", qk, float64(m.FrozenBytes())/(1<<20))
				}
				if dumpQ != "" {
					if err := dumpQuantized(m, dumpName, dumpFile); err != nil {
						return err
					}
					fmt.Fprintf(out, "  %s quantized form written to %s\n", dumpName, dumpFile)
				}
				if ck, err := model.OpenWeights(dir); err == nil {
					if unused := model.Unused(c, ck.Names()); len(unused) > 0 {
						fmt.Fprintf(out, "  %d checkpoint tensors the config does not use, e.g. %s\n", len(unused), unused[0])
					}
					ck.Close()
				}
				logrus.WithFields(logrus.Fields{"dir": dir, "seconds": time.Since(start).Seconds()}).Debug("model loaded")
				if len(ids) == 0 {
					return nil
				}
				return printLogits(cmd, m, ids, logitsOut)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "model", "", "model directory")
	f.StringVar(&dtype, "dtype", "float32", "run dtype: float32, bfloat16 or float16")
	f.StringVar(&device, "device", "cpu", "cpu, cuda or cuda:N")
	f.StringVar(&text, "text", "", "run the decoder on this text (tokenized with the dir's tokenizer.json)")
	f.StringVar(&logitsOut, "logits-out", "", "with --text (or --inputs): write the logits (and input_ids) to this safetensors file")
	f.StringVar(&inputs, "inputs", "", "Qwen2.5-Omni: processor outputs (a safetensors file) to run the thinker on")
	f.StringVar(&dump, "dump", "", "Qwen2.5-Omni, with --logits-out: also write towers (encoder outputs) and/or positions (position_ids, rope_deltas)")
	f.StringVar(&quantize, "quantize", "none", "store the decoder linears quantized: none, nf4 or int8 (as model.quantize)")
	f.StringVar(&dumpQ, "dump-quantized", "", "with --quantize: TENSOR=FILE writes that weight's quantized form and its dequantized value to a safetensors file")
	f.StringVar(&adapter, "adapter", "", "a PEFT LoRA adapter dir to apply: a mose export, or any PEFT 0.13.2 LoRA mose supports (README: PEFT adapters from elsewhere)")
	return cmd
}

// loadModel loads dir, with a PEFT adapter on top when adapter is set.
func loadModel(dir, adapter string, opt model.Options) (*model.Model, func(), error) {
	if adapter != "" {
		return export.OpenPEFT(dir, adapter, opt)
	}
	m, err := model.Load(dir, opt)
	if err != nil {
		return nil, nil, err
	}
	return m, m.Close, nil
}

// dumpQuantized writes one weight's quantized form to file.
func dumpQuantized(m *model.Model, name, file string) error {
	ts, err := m.DumpQuantized(name)
	if err != nil {
		return badInput(fmt.Errorf("--dump-quantized: %w", err))
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return safetensors.WriteFile(file, ts, map[string]string{"format": "pt"})
}

// printLogits runs the decoder on ids and prints the top-5 next tokens.
func printLogits(cmd *cobra.Command, m *model.Model, ids []int32, out string) error {
	s := torch.NewScope()
	defer s.Close()
	ids64 := make([]int64, len(ids))
	for i, id := range ids {
		ids64[i] = int64(id)
	}
	in := &model.Inputs{IDs: s.ToDevice(s.FromInt64(ids64, 1, int64(len(ids))), m.Device)}
	var logits *torch.Tensor
	err := torch.NoGrad(func() error {
		logits = m.Logits(s, m.Forward(s, in, false), nil) // (1,T,V)
		return s.Err()
	})
	if err != nil {
		return err
	}
	last := s.Narrow(logits, 1, int64(len(ids)-1), 1)
	vals, idx := s.TopK(s.Flatten(last, 0, -1), 5, 0)
	if err := s.Err(); err != nil {
		return err
	}
	v, _ := vals.Float32s()
	i, _ := idx.Int64s()
	fmt.Fprintf(cmd.OutOrStdout(), "input ids %v\ntop next tokens: ", ids)
	for k := range v {
		fmt.Fprintf(cmd.OutOrStdout(), "%d (%.4f) ", i[k], v[k])
	}
	fmt.Fprintln(cmd.OutOrStdout())
	if out == "" {
		return nil
	}
	all, err := logits.Float32s()
	if err != nil {
		return err
	}
	ts := []safetensors.Tensor{
		{Name: "input_ids", DType: safetensors.I64, Shape: []int64{1, int64(len(ids))}, Data: safetensors.Int64sToBytes(ids64)},
		{Name: "logits", DType: safetensors.F32, Shape: logits.Shape(), Data: safetensors.Float32sToBytes(all)},
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return safetensors.WriteFile(out, ts, map[string]string{"format": "pt"})
}
