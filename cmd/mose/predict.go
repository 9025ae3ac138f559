package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/stack"
)

func newPredictCmd() *cobra.Command {
	var opt infer.PredictOptions
	var feats []string
	var id, label, subtitle string
	lim := media.DefaultLimits // mose preprocess's default --max-* limits
	med := preprocessOpts{cmd: "predict", maxSeconds: lim.MaxSeconds, maxFrames: lim.MaxFrames, maxFramePixels: lim.MaxFramePixels}
	cmd := &cobra.Command{
		Use:   "predict --checkpoint PATH (--manifest F | --feature NAME=FILE... --subtitle TEXT | --video V [--audio A] [--image I] [--subtitle TEXT])",
		Short: "Run a trained model on samples: label scores and the generated answer",
		Long: `predict loads the model with the adapters of a checkpoint or of a PEFT export and,
for each sample, prints every label's answer log-likelihood (and its probability
over the labels), the best label, and the answer the model generates (greedy, or
sampled with eval.temperature > 0; up to eval.max_new_tokens). Attention
Reallocation applies when eval.ar.enabled. --out writes one JSON object per
sample (JSONL).

Samples come from a manifest (--manifest, the format of data.train) or from
flags: one --feature NAME=FILE.npy per modality input of the model and
--subtitle (--label, if known, is reported as the gold label). On a
Qwen2.5-Omni thinker the sample is media instead: --video, --audio and
--image, decoded with FFmpeg and run through the processor in memory exactly
as mose preprocess does (--fps, --use-audio-in-video, --subtitle as there);
a bad media file exits 2 naming it. --feature is refused on a thinker, and
the media flags on any other model.

The recipe defaults to the checkpoint's own recipe.yaml; an export needs --recipe.
--checkpoint may also be a merged export (a model dir), run as it is stored.`,
		Args: cobra.NoArgs,
	}
	rf := addRecipeFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opt.Checkpoint, "checkpoint", "", "checkpoint directory (step-NNNNNNN), PEFT export or merged export directory")
	f.StringVar(&opt.Manifest, "manifest", "", "JSONL manifest of the samples to predict")
	f.StringArrayVar(&feats, "feature", nil, "NAME=FILE.npy: one modality input's features of a single sample (repeatable)")
	f.StringVar(&subtitle, "subtitle", "", "the single sample's subtitle")
	f.StringVar(&id, "id", "sample", "the single sample's id")
	f.StringVar(&label, "label", "", "the single sample's gold label, if known")
	f.StringVar(&opt.Out, "out", "", "write the predictions as JSONL to this file")
	f.BoolVar(&opt.Force, "force", false, "replace an existing --out file")
	f.BoolVar(&opt.NoGenerate, "no-generate", false, "label scores only, no generated answer")
	f.StringVar(&med.video, "video", "", "Qwen2.5-Omni: the single sample's video file")
	f.StringVar(&med.audio, "audio", "", "Qwen2.5-Omni: the single sample's audio file")
	f.StringVar(&med.image, "image", "", "Qwen2.5-Omni: the single sample's image file")
	f.Float64Var(&med.fps, "fps", 2, "Qwen2.5-Omni: frames sampled per second of --video")
	f.BoolVar(&med.useAudioInVideo, "use-audio-in-video", false, "Qwen2.5-Omni: use --video's audio track, interleaved with its frames")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if opt.Checkpoint == "" {
			return badInput(errors.New("predict: --checkpoint is required"))
		}
		hasMedia := med.video != "" || med.audio != "" || med.image != ""
		single := len(feats) > 0 || cmd.Flags().Changed("subtitle") || label != "" || hasMedia
		switch {
		case opt.Manifest != "" && single:
			return badInput(errors.New("predict: give --manifest or a sample (--feature or --video/--audio/--image, --subtitle, --label), not both"))
		case opt.Manifest == "" && !single:
			return badInput(errors.New("predict: give --manifest, or a sample with --feature NAME=FILE and --subtitle (--video, --audio, --image on a Qwen2.5-Omni thinker)"))
		}
		if single {
			s := data.Sample{ID: id, Label: label, Subtitle: subtitle, Features: map[string]string{}}
			for _, kv := range feats {
				name, file, ok := strings.Cut(kv, "=")
				if !ok || name == "" || file == "" {
					return badInput(fmt.Errorf("predict: --feature %q: want NAME=FILE.npy", kv))
				}
				if _, dup := s.Features[name]; dup {
					return badInput(fmt.Errorf("predict: --feature %s given twice", name))
				}
				s.Features[name] = file
			}
			opt.Sample = &s
		}
		cfg, err := rf.loadFor("predict", opt.Checkpoint)
		if err != nil {
			return err
		}
		if single {
			if opt.Processed, err = predictMedia(cmd.Context(), cfg.Model.Path, opt.Checkpoint, subtitle, med, hasMedia); err != nil {
				return err
			}
		}
		preds, err := infer.Predict(cmd.Context(), cfg, opt)
		if err != nil {
			return err
		}
		return printPredictions(cmd.OutOrStdout(), preds)
	}
	return cmd
}

// predictMedia runs Qwen2.5-Omni's processor in memory on the single
// sample's media (processMedia, as mose preprocess) when the model is a
// thinker (model.path, or the checkpoint when it is a merged export: the
// model dir whose config, tokenizer and preprocessor_config.json apply);
// nil without media. Media flags on another model are refused by name.
func predictMedia(ctx context.Context, modelPath, checkpoint, subtitle string, o preprocessOpts, hasMedia bool) (*omniproc.Outputs, error) {
	if stack.IsModelDir(checkpoint) {
		modelPath = checkpoint
	}
	if !stack.IsOmniDir(modelPath) {
		if hasMedia {
			return nil, badInput(fmt.Errorf("predict: --video, --audio and --image need a Qwen2.5-Omni thinker; %s is not one (give --feature NAME=FILE.npy)", modelPath))
		}
		return nil, nil
	}
	if !hasMedia {
		return nil, badInput(fmt.Errorf("predict: %s is a Qwen2.5-Omni thinker: its sample is media (--video, --audio, --image), not --feature files", modelPath))
	}
	o.model, o.text = modelPath, subtitle
	return processMedia(ctx, o)
}

// printPredictions writes, per sample, the labels by score, the best label
// and the generated answer.
func printPredictions(w io.Writer, preds []infer.SamplePrediction) error {
	for _, p := range preds {
		head := p.ID
		if p.Gold != "" {
			head += "  (gold: " + p.Gold + ")"
		}
		fmt.Fprintln(w, head)
		sc := slices.Clone(p.Scores)
		slices.SortStableFunc(sc, func(a, b infer.LabelScore) int {
			switch {
			case a.LogLikelihood > b.LogLikelihood:
				return -1
			case a.LogLikelihood < b.LogLikelihood:
				return 1
			}
			return 0
		})
		var parts []string
		for _, s := range sc {
			parts = append(parts, fmt.Sprintf("%s %.3f (p=%.3f)", s.Label, s.LogLikelihood, s.Prob))
		}
		fmt.Fprintf(w, "  scores:    %s\n", strings.Join(parts, ", "))
		fmt.Fprintf(w, "  predicted: %s\n", p.Predicted)
		if p.Answer != nil {
			named := *p.AnswerLabel
			if named == "" {
				named = "no label named"
			}
			fmt.Fprintf(w, "  answer:    %q -> %s\n", *p.Answer, named)
		}
	}
	_, err := fmt.Fprintf(w, "%d sample(s)\n", len(preds))
	return err
}
