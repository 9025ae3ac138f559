package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/stack"
)

func newSynthDataCmd() *cobra.Command {
	var (
		out, preset string
		samples     int
		evalSamples int
		seed        uint64
		visualToks  int
		force       bool
		withMedia   bool
		knobs       synth.Config
	)
	def := synth.DefaultConfig(synth.Preset{})
	cmd := &cobra.Command{
		Use:   "synth-data --out DIR",
		Short: "Generate a synthetic CA-MER-like emotion-conflict dataset",
		Long: `synth-data writes train.jsonl, eval.jsonl and .npy features for a preset model's
inputs: nine labels; video-aligned, audio-aligned and consistent subsets in equal
parts; many weak visual tokens and one strong audio token, each carrying a label
prototype, plus a cue telling which modality shows the true emotion. See the data
section of the README for the construction and its guarantees.

With --media it writes raw clips instead, for a Qwen2.5-Omni model: clips/<id>.mp4 made by
FFmpeg's own generators (a background colour carrying a visual label, a sine tone an audio
label, a bar across the top as the conflict cue: white when the video tells the truth,
black when the audio does), the three CA-MER subsets in equal parts, and media manifests
train.jsonl and eval.jsonl naming them (the audio is each video's own track: train them
with data.use_audio_in_video true). docs/media.md says what such a set shows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return badInput(errors.New("synth-data: --out is required"))
			}
			if withMedia {
				return synthMedia(cmd, out, samples, seed, force)
			}
			p, err := synth.LookupPreset(preset)
			if err != nil {
				return badInput(err)
			}
			if visualToks != 0 {
				if p, err = p.WithVisualTokens(visualToks); err != nil {
					return badInput(fmt.Errorf("synth-data: --visual-tokens: %w", err))
				}
			}
			cfg := synth.DefaultConfig(p)
			cfg.Seed = seed
			if samples > 0 {
				cfg.Train = samples
				cfg.Eval = max(samples/4, 3)
			}
			if evalSamples > 0 {
				cfg.Eval = evalSamples
			}
			cfg.VisualSignal, cfg.VisualFraction = knobs.VisualSignal, knobs.VisualFraction
			cfg.AudioSignal, cfg.Cue, cfg.Noise = knobs.AudioSignal, knobs.Cue, knobs.Noise
			res, err := synth.Generate(out, cfg, force)
			if errors.Is(err, synth.ErrConfig) || errors.Is(err, synth.ErrNotEmpty) {
				return badInput(fmt.Errorf("synth-data: %w (--force replaces a non-empty --out)", err))
			}
			if err != nil {
				return fmt.Errorf("synth-data: %w", err)
			}
			logrus.WithFields(logrus.Fields{
				"dir": res.Dir, "preset": p.Name, "train": res.Train, "eval": res.Eval, "seed": seed,
			}).Info("synthetic dataset written")
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d train and %d eval samples to %s\n", res.Train, res.Eval, res.Dir)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "output directory (created; must be empty unless --force)")
	f.StringVar(&preset, "preset", "tiny", fmt.Sprintf("model preset whose inputs to generate: %v", synth.PresetNames()))
	f.IntVar(&samples, "samples", 0, "training samples (default 2160; eval gets a quarter)")
	f.IntVar(&evalSamples, "eval-samples", 0, "evaluation samples (default: --samples/4, or 540)")
	f.Uint64Var(&seed, "seed", def.Seed, "random seed")
	f.BoolVar(&force, "force", false, "replace an existing non-empty --out directory")
	f.BoolVar(&withMedia, "media", false, "write raw synthetic clips (mp4 with audio) and media manifests for a Qwen2.5-Omni model (needs FFmpeg)")
	f.Float64Var(&knobs.VisualSignal, "visual-signal", def.VisualSignal, "label prototype amplitude on carrying visual tokens (noise std units)")
	f.Float64Var(&knobs.VisualFraction, "visual-fraction", def.VisualFraction, "fraction of visual tokens carrying the prototype")
	f.Float64Var(&knobs.AudioSignal, "audio-signal", def.AudioSignal, "label prototype amplitude on the audio token")
	f.Float64Var(&knobs.Cue, "cue", def.Cue, "amplitude of the genuine-modality cue")
	f.Float64Var(&knobs.Noise, "noise", def.Noise, "Gaussian noise std on every feature value")
	f.IntVar(&visualToks, "visual-tokens", 0, "visual tokens per sample (0: the preset's; the model must have been made with init-model --visual-tokens N)")
	return cmd
}

// synthMedia is synth-data --media: omnisynth.GenerateMedia into out.
func synthMedia(cmd *cobra.Command, out string, samples int, seed uint64, force bool) error {
	if samples > stack.MaxOmniSynthSamples {
		return badInput(fmt.Errorf("synth-data --media: --samples %d: at most %d clips", samples, stack.MaxOmniSynthSamples))
	}
	if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
		if !force {
			return badInput(fmt.Errorf("synth-data: %s is not empty (--force replaces it)", out))
		}
		if err := os.RemoveAll(out); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := omnisynth.GenerateMedia(ctx, out, omnisynth.Config{Samples: samples, Seed: seed})
	if err != nil {
		return fmt.Errorf("synth-data --media: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %d training clips (and a quarter as many for eval) and their media manifests to %s (%s)\n", res.Samples, out, res.FFmpeg)
	return nil
}
