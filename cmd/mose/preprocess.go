package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniprep"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/stack"
)

// preprocessOpts are mose preprocess's flags.
type preprocessOpts struct {
	cmd                       string // the command, for messages: preprocess or predict
	model, out, tok           string
	video, audio, image, text string
	fps                       float64
	useAudioInVideo           bool
	lim                       media.Limits
	maxFramePixels, maxFrames int
	maxSeconds                float64
}

func newPreprocessCmd() *cobra.Command {
	o := preprocessOpts{cmd: "preprocess"}
	cmd := &cobra.Command{
		Use:   "preprocess --model DIR --out FILE.safetensors [--video V] [--audio A] [--image I] [--subtitle T]",
		Short: "Decode media with FFmpeg and write Qwen2.5-Omni's processor outputs for one sample",
		Long: `preprocess decodes a video (frames sampled at --fps), an audio track (16 kHz mono) and an
image with FFmpeg, runs Qwen2.5-Omni's processor on them in Go (Whisper log-mel features,
Qwen2-VL image and video patches, the prompt with its placeholders expanded) and writes the
outputs under transformers' names to --out (atomically), the file model-info --inputs reads.
The tokenizer is DIR/tokenizer.json (or --tokenizer); its special token ids must match
DIR/config.json's. DIR/preprocessor_config.json, if there is one, sets the feature
extractor and image settings (a setting mose does not implement is refused by name);
without one, Qwen2.5-Omni's released settings are used. --use-audio-in-video takes the video's own audio track and interleaves
its tokens with the video's. FFmpeg: $MOSE_FFMPEG, the ffmpeg on PATH, or the static build
scripts/setup/ffmpeg.sh caches. A bad file exits 2 naming it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := runPreprocess(cmd.Context(), o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", o.out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.model, "model", "", "Qwen2.5-Omni model directory (config.json, tokenizer.json)")
	f.StringVar(&o.out, "out", "", "output safetensors file")
	f.StringVar(&o.tok, "tokenizer", "", "tokenizer.json (default: the model directory's)")
	f.StringVar(&o.video, "video", "", "video file")
	f.StringVar(&o.audio, "audio", "", "audio file (or any file with an audio stream)")
	f.StringVar(&o.image, "image", "", "image file")
	f.StringVar(&o.text, "subtitle", "", "the text of the user turn")
	f.Float64Var(&o.fps, "fps", 2, "frames sampled per second of video")
	f.BoolVar(&o.useAudioInVideo, "use-audio-in-video", false, "use the video's audio track, interleaved with its frames")
	f.Float64Var(&o.maxSeconds, "max-seconds", media.DefaultLimits.MaxSeconds, "longest video or audio accepted, in seconds")
	f.IntVar(&o.maxFrames, "max-frames", media.DefaultLimits.MaxFrames, "most frames sampled from a video")
	f.IntVar(&o.maxFramePixels, "max-frame-pixels", media.DefaultLimits.MaxFramePixels, "largest width × height of a frame")
	return cmd
}

func runPreprocess(ctx context.Context, o preprocessOpts) error {
	if o.model == "" || o.out == "" {
		return badInput(fmt.Errorf("preprocess: --model and --out are required"))
	}
	out, err := processMedia(ctx, o)
	if err != nil {
		return err
	}
	return out.WriteFile(o.out)
}

// processMedia decodes o's media with FFmpeg and runs Qwen2.5-Omni's
// processor on them in memory, with o.model's config, tokenizer (or
// o.tok) and preprocessor_config.json: the outputs `mose preprocess`
// writes. Bad flags and bad media are input errors naming them.
func processMedia(ctx context.Context, o preprocessOpts) (*omniproc.Outputs, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.video == "" && o.audio == "" && o.image == "" {
		return nil, badInput(fmt.Errorf("%s: give at least one of --video, --audio, --image", o.cmd))
	}
	if o.useAudioInVideo && (o.video == "" || o.audio != "") {
		return nil, badInput(fmt.Errorf("%s: --use-audio-in-video takes the audio from --video: give --video and no --audio", o.cmd))
	}
	if !(o.fps > 0 && o.fps <= 120) {
		return nil, badInput(fmt.Errorf("%s: --fps %g, want (0, 120]", o.cmd, o.fps))
	}
	if o.maxSeconds <= 0 || o.maxFrames <= 0 || o.maxFramePixels <= 0 {
		return nil, badInput(fmt.Errorf("%s: the --max-* limits must be positive", o.cmd))
	}
	lim := media.Limits{MaxSeconds: o.maxSeconds, MaxFrames: o.maxFrames, MaxFramePixels: o.maxFramePixels}
	prep, err := stack.LoadOmniPrep(o.model, o.tok)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.cmd, err)
	}
	ff, err := media.Locate(ctx)
	if err != nil {
		return nil, err
	}
	out, err := prep.Process(ctx, ff, data.MediaFiles{Video: o.video, Audio: o.audio, Image: o.image, Subtitle: o.text},
		omniprep.Settings{FPS: o.fps, UseAudioInVideo: o.useAudioInVideo, Limits: lim})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", o.cmd, err)
	}
	return out, nil
}
