package stack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/quant"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
)

// A Qwen2.5-Omni thinker as the frozen backbone (model/omni): the stack
// loads the thinker (decoder and towers, all frozen), attaches the adapters
// to the decoder's linears as to any decoder (c.Model is the thinker's
// decoder), and reads omni manifests (data.OpenOmni), whose batches carry
// the processor outputs (data.Batch.Media). The towers' outputs come from
// the encoder-output cache (enccache.go), or the towers run under no-grad
// before the decoder (OmniEncode: then Thinker.Begin for training,
// Thinker.Prefill for scoring and generation).

// IsOmniDir reports whether dir's config.json describes a Qwen2.5-Omni model
// (full or thinker-only).
func IsOmniDir(dir string) bool {
	b, err := fsutil.ReadRegularLimit(filepath.Join(dir, "config.json"), fsutil.MaxConfigSize)
	return err == nil && omni.IsOmni(b)
}

// OmniUnsupported refuses, by recipe key, what a run on a Qwen2.5-Omni
// thinker cannot do: trained projectors (it has none: its towers are
// frozen).
func OmniUnsupported(cfg *recipes.Config) error {
	if cfg.Model.TrainProjectors {
		return fmt.Errorf("%w: model.train_projectors: a Qwen2.5-Omni thinker has no projectors (its audio and vision towers are frozen): set it to false", recipes.ErrRecipe)
	}
	return nil
}

// buildOmni loads cfg's Qwen2.5-Omni thinker into c: the decoder as
// c.Model (its linears stored as qk), the spec (labels and answer) and, unless sets is NoData, the
// tokenizer.
func (c *Stack) buildOmni(cfg *recipes.Config, sets Sets, dt torch.DType, qk quant.Kind) error {
	if err := OmniUnsupported(cfg); err != nil {
		return err
	}
	th, err := omni.Load(cfg.Model.Path, model.Options{DType: dt, Device: c.Dev, Quantize: qk})
	if err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	c.Omni, c.Model, c.OmniConfig = th, th.Decoder, &th.Config
	if c.OmniSpec, err = ReadOmniSpec(cfg.Model.Path, th.Config); err != nil {
		return fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	c.Spec = data.Spec{Labels: c.OmniSpec.Labels, Prompt: data.Prompt{Answer: c.OmniSpec.Prompt.Answer, ReasonAnswer: c.OmniSpec.Prompt.ReasonAnswer}}
	if sets != NoData {
		if c.Tok, err = LoadOmniTokenizer(cfg.Model.Path); err != nil {
			return err
		}
	}
	return nil
}

// ReadOmniSpec is data.ReadOmniSpec with the thinker's placeholder ids and
// vocabulary.
func ReadOmniSpec(dir string, oc omni.Config) (data.OmniSpec, error) {
	spec, err := data.ReadOmniSpec(dir)
	if err != nil {
		return spec, err
	}
	spec.Tokens = data.OmniTokens{Audio: int64(oc.Tokens.Audio), Image: int64(oc.Tokens.Image), Video: int64(oc.Tokens.Video)}
	spec.VocabSize = oc.Text.VocabSize
	return spec, nil
}

// LoadOmniTokenizer loads dir/tokenizer.json, which training needs for the
// answers (a model dir without one is refused by name).
func LoadOmniTokenizer(dir string) (*tokenizer.Tokenizer, error) {
	path := filepath.Join(dir, "tokenizer.json")
	tok, err := tokenizer.Load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: model.path %s has no tokenizer.json: the answers of a Qwen2.5-Omni model's samples are encoded with it (copy the model's tokenizer.json there)", inputerr.ErrModel, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, dir, err)
	}
	return tok, nil
}

// openOmni reads an omni manifest against the thinker: data.OpenOmni, then
// every example's media description checked against the config (pixel and
// mel sizes) and its placeholders against its media (omni's RopeIndex, as
// the forward walks them), naming the file.
func (c *Stack) openOmni(manifest string, pad int32) (*data.Dataset, error) {
	return c.openOmniShard(manifest, pad, 0, 1)
}

// openOmniShard is openOmni keeping samples i % world == rank only.
func (c *Stack) openOmniShard(manifest string, pad int32, rank, world int) (*data.Dataset, error) {
	var err error
	if c.Enc == nil {
		if c.Enc, err = c.newEncCache(); err != nil {
			return nil, err
		}
	}
	ds, err := data.OpenOmni(manifest, c.OmniSpec, c.Tok, data.Options{Root: c.Cfg.Data.Root, MaxLen: c.Cfg.Data.MaxLen, PadID: pad,
		Media: c.mediaPrep(manifest), ContentKeys: true, MediaCached: c.Enc.Has, ShardRank: rank, ShardWorld: world})
	if err != nil {
		return nil, err
	}
	if err := CheckOmniDataset(c.Omni.Config, ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// CheckOmniDataset checks every example of an omni dataset against the
// thinker's config: pixel columns (channels × temporal patch × patch²) and
// mel bins, and the prompt's placeholders against the media (RopeIndex on
// the example alone). All problems are reported together.
func CheckOmniDataset(oc omni.Config, ds *data.Dataset) error {
	v := oc.Vision
	pixDim := v.InChannels * v.TemporalPatchSize * v.PatchSize * v.PatchSize
	var probs data.Problems
	for i := range ds.Examples {
		ex := &ds.Examples[i]
		oe := ds.OmniExample(i)
		smp := ds.Samples[i]
		fail := func(err error) {
			probs.Add(&data.SampleError{File: ds.Manifest, Line: smp.Line, ID: smp.ID, Path: smp.Inputs, Err: err})
		}
		if (oe.PixelDim != 0 && oe.PixelDim != pixDim) || (oe.VideoDim != 0 && oe.VideoDim != pixDim) {
			fail(fmt.Errorf("%w: pixel values of %d/%d columns; the vision tower takes %d (%d channels × temporal patch %d × patch %d²)",
				omni.ErrInputs, oe.PixelDim, oe.VideoDim, pixDim, v.InChannels, v.TemporalPatchSize, v.PatchSize))
			continue
		}
		if oe.Mel != 0 && oe.Mel != oc.Audio.NumMelBins {
			fail(fmt.Errorf("%w: input_features has %d mel bins; the audio tower takes %d", omni.ErrInputs, oe.Mel, oc.Audio.NumMelBins))
			continue
		}
		in := &omni.Inputs{B: 1, T: ex.AnswerStart, IDs: make([]int64, ex.AnswerStart), ImageGridTHW: oe.ImageGridTHW,
			VideoGridTHW: oe.VideoGridTHW, VideoSecondPerGrid: oe.VideoSecondPerGrid, AudioFeatureLens: oe.AudioLens,
			UseAudioInVideo: oe.UseAudioInVideo}
		for t := range in.IDs {
			in.IDs[t] = int64(ex.IDs[t])
		}
		if _, err := oc.RopeIndex(in); err != nil {
			fail(err)
			continue
		}
		if err := countPlaceholders(oc, in, oe); err != nil {
			fail(err)
		}
	}
	return probs.Err()
}

// countPlaceholders refuses a prompt whose placeholder tokens do not match
// its media's encoder outputs (the forward would fail at the scatter).
func countPlaceholders(oc omni.Config, in *omni.Inputs, oe data.OmniExample) error {
	m := int64(oc.Vision.SpatialMergeSize * oc.Vision.SpatialMergeSize)
	var img, vid, aud int64
	for _, g := range oe.ImageGridTHW {
		img += g[0] * g[1] * g[2] / m
	}
	for _, g := range oe.VideoGridTHW {
		vid += g[0] * g[1] * g[2] / m
	}
	for _, n := range oe.AudioLens {
		aud += omni.AudioTokens(n)
	}
	count := map[int64]int64{}
	for _, id := range in.IDs {
		count[id]++
	}
	for _, p := range []struct {
		name string
		id   int
		want int64
	}{{"<|IMAGE|>", oc.Tokens.Image, img}, {"<|VIDEO|>", oc.Tokens.Video, vid}, {"<|AUDIO|>", oc.Tokens.Audio, aud}} {
		if got := count[int64(p.id)]; got != p.want {
			return fmt.Errorf("%w: %d %s tokens (id %d) in input_ids, but the media give %d encoder outputs", omni.ErrInputs, got, p.name, p.id, p.want)
		}
	}
	return nil
}

// OmniInputs is a batch of an omni dataset as the thinker reads it: the
// token layout and the media on the device.
func OmniInputs(s *torch.Scope, b *data.Batch, dev torch.Device) (*omni.Inputs, *omni.Batch, error) {
	in, err := omniTokenInputs(b)
	if err != nil {
		return nil, nil, err
	}
	return in, omniMediaBatch(s, in, b.Media, dev), s.Err()
}

// omniTokenInputs is batch b's token layout and media description (no
// tensors).
func omniTokenInputs(b *data.Batch) (*omni.Inputs, error) {
	m := b.Media
	if m == nil {
		return nil, fmt.Errorf("stack: a batch without media for a Qwen2.5-Omni thinker (not an omni dataset's)")
	}
	in := &omni.Inputs{B: b.B, T: b.T, IDs: b.IDs, Mask: make([]int64, b.B*b.T), ImageGridTHW: m.ImageGridTHW,
		VideoGridTHW: m.VideoGridTHW, VideoSecondPerGrid: m.VideoSecondPerGrid, AudioFeatureLens: m.AudioLens,
		UseAudioInVideo: m.UseAudioInVideo}
	for r, n := range b.Lengths {
		for t := range n {
			in.Mask[r*b.T+t] = 1
		}
	}
	return in, nil
}

// omniMediaBatch is media m as the towers read it, on dev, with in.
func omniMediaBatch(s *torch.Scope, in *omni.Inputs, m *data.Media, dev torch.Device) *omni.Batch {
	to := func(t *torch.Tensor) *torch.Tensor {
		if dev == torch.CPU || t == nil {
			return t
		}
		return s.ToDevice(t, dev)
	}
	ob := &omni.Batch{Inputs: in}
	if m.Pixels != nil {
		ob.Pixels = to(s.FromFloat32(m.Pixels, int64(len(m.Pixels)/m.PixelDim), int64(m.PixelDim)))
	}
	if m.Videos != nil {
		ob.PixelsVideos = to(s.FromFloat32(m.Videos, int64(len(m.Videos)/m.VideoDim), int64(m.VideoDim)))
	}
	if m.Features != nil {
		ob.Audio = omni.AudioFeatures{Features: to(s.FromFloat32(m.Features, int64(len(m.AudioLens)), int64(m.Mel), int64(m.Frames))),
			Mask: m.FeatureMask()}
	}
	return ob
}

// OmniBegin prepares batch b for the thinker's decoder: the batch tensors
// (answer positions and targets), the towers' outputs for its media
// (OmniEncode: from the encoder-output cache, or the towers run under
// no-grad), and the pass and input embeddings (Thinker.Begin). Errors are
// recorded in s.
func (c *Stack) OmniBegin(s *torch.Scope, b *data.Batch, train bool) (BatchTensors, *model.Pass, *torch.Tensor) {
	bt := Tensors(s, b, c.Dev)
	in, emb := c.OmniEncode(s, b)
	if in == nil {
		return bt, nil, nil
	}
	p, x := c.Omni.Begin(s, in, emb, train)
	return bt, p, x
}

// OmniEncode runs the thinker's towers under no-grad on batch b's media
// (frozen: nothing of them is kept for backward; only their outputs are
// kept, in s) and returns the batch's token layout and encoder outputs, for
// Begin or Prefill. On an error (recorded in s) in is nil.
func (c *Stack) OmniEncode(s *torch.Scope, b *data.Batch) (*omni.Inputs, omni.Embeds) {
	es := s.Child() // the media and the towers' working set
	defer es.Close()
	in, err := omniTokenInputs(b)
	if err != nil {
		s.Fail(err)
		return nil, omni.Embeds{}
	}
	emb, err := c.omniEmbeds(es, b, in)
	if err != nil {
		s.Fail(err)
		return nil, omni.Embeds{}
	}
	for _, e := range []**torch.Tensor{&emb.Audio, &emb.Image, &emb.Video} {
		*e = s.Own(es.Keep(*e))
	}
	return in, emb
}

// buildOmniAdaptersOnly is BuildAdaptersOnly for a Qwen2.5-Omni thinker:
// the adapters of its decoder's targets, from its config alone.
func buildOmniAdaptersOnly(cfg *recipes.Config) (*Stack, error) {
	if err := OmniUnsupported(cfg); err != nil {
		return nil, err
	}
	oc, err := omni.LoadConfig(cfg.Model.Path)
	if err != nil {
		return nil, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	c := &Stack{Cfg: cfg, Dev: torch.CPU, OmniConfig: &oc}
	if c.OmniSpec, err = ReadOmniSpec(cfg.Model.Path, oc); err != nil {
		return nil, fmt.Errorf("%w: model.path %s: %w", inputerr.ErrModel, cfg.Model.Path, err)
	}
	c.Spec = data.Spec{Labels: c.OmniSpec.Labels, Prompt: data.Prompt{Answer: c.OmniSpec.Prompt.Answer, ReasonAnswer: c.OmniSpec.Prompt.ReasonAnswer}}
	var all []experts.Target
	for _, t := range oc.Decoder().Tensors() {
		if strings.HasSuffix(t.Name, "_proj.weight") {
			all = append(all, experts.Target{Name: strings.TrimSuffix(t.Name, ".weight"), Out: t.Shape[0], In: t.Shape[1]})
		}
	}
	if err := c.buildAdapters(all); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// OmniSynthPreset is the data.synth preset of a Qwen2.5-Omni thinker's
// synthetic data (package omnisynth): clips for omni-tiny's tokenizer.
const OmniSynthPreset = "omni-tiny"

// MaxOmniSynthSamples bounds data.synth_samples for OmniSynthPreset (each
// sample's file is about 5 MB).
const MaxOmniSynthSamples = 512

// generateOmniData makes the omni synthetic set of preset in dir
// (omnisynth): processor-outputs files made with omni-tiny's tokenizer
// (OmniSynthPreset; its synth.json says whether FFmpeg made the clips), or
// the raw clips and a media manifest (omnisynth.MediaPreset; FFmpeg
// required).
func generateOmniData(dir, preset string, samples int, seed uint64) error {
	if preset == omnisynth.MediaPreset {
		if samples > MaxOmniSynthSamples {
			return fmt.Errorf("%w: data.synth_samples %d: the %s synthetic set makes at most %d clips; lower data.synth_samples",
				recipes.ErrRecipe, samples, preset, MaxOmniSynthSamples)
		}
		_, err := omnisynth.GenerateMedia(context.Background(), dir, omnisynth.Config{Samples: samples, Seed: seed})
		return err
	}
	if samples > MaxOmniSynthSamples {
		return fmt.Errorf("%w: data.synth_samples %d: the %s synthetic set makes at most %d samples (about 5 MB each); lower data.synth_samples",
			recipes.ErrRecipe, samples, OmniSynthPreset, MaxOmniSynthSamples)
	}
	tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
	if err != nil {
		return err
	}
	_, err = omnisynth.Generate(context.Background(), dir, tok, omnisynth.Config{Samples: samples, Seed: seed})
	return err
}

// InitOmniModelDir writes a random Qwen2.5-Omni thinker of an omni preset
// (omni.Presets) into dir, with its preset's tokenizer, as
// `mose init-model --preset` does with its defaults (std 0.02, float32).
func InitOmniModelDir(dir, preset string, seed uint64) error {
	cfg, ok := omni.Presets[preset]
	if !ok {
		return fmt.Errorf("%w: unknown omni preset %q", recipes.ErrRecipe, preset)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(dir)), 0o755); err != nil {
		return err
	}
	tmp := filepath.Clean(dir) + fmt.Sprintf(".tmp-%d", os.Getpid())
	os.RemoveAll(tmp)
	err := omni.WriteRandom(tmp, cfg, seed, 0.02, safetensors.F32)
	var tj []byte
	if err == nil {
		tj, err = omniproc.PresetTokenizerJSON(preset)
	}
	if err == nil {
		err = fsutil.WriteBytes(filepath.Join(tmp, "tokenizer.json"), tj)
	}
	if err == nil {
		os.Remove(dir) // an empty dir may stand in the way of the rename
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
	}
	return err
}

// OmniSynthMeta reads the synth.json of an omni synthetic set in dir (nil
// when dir holds another kind of set, or none).
func OmniSynthMeta(dir string) *omnisynth.Meta {
	b, err := fsutil.ReadRegularLimit(filepath.Join(dir, "synth.json"), fsutil.MaxConfigSize)
	if err != nil {
		return nil
	}
	var m omnisynth.Meta
	if json.Unmarshal(b, &m) != nil || m.Preset != OmniSynthPreset && m.Preset != omnisynth.MediaPreset {
		return nil
	}
	return &m
}

// omniDecoderPrefix is where transformers 5's
// Qwen2_5OmniThinkerForConditionalGeneration holds the decoder's layers:
// its module model.language_model.layers.N.self_attn.q_proj is saved (and
// read by mose) as model.layers.N.self_attn.q_proj.
const omniDecoderPrefix = "model.language_model.layers."

// PEFTName is the name PEFT gives, on the model class transformers loads
// model.path with, to the module or tensor mose calls name: the same for a
// LLaMA-family model; for a Qwen2.5-Omni thinker the decoder's layers are
// under model.language_model.layers. (not model.layers.).
func (c *Stack) PEFTName(name string) string {
	if c.OmniConfig == nil {
		return name
	}
	if rest, ok := strings.CutPrefix(name, "model.layers."); ok {
		return omniDecoderPrefix + rest
	}
	return name
}

// PEFTTargets is the target_modules a PEFT export writes: the recipe's
// adapters.targets for a LLaMA-family model; for a Qwen2.5-Omni thinker a
// regular expression matching the decoder's target linears only, since
// q_proj, k_proj, v_proj also name the audio tower's projections and
// gate_proj, up_proj, down_proj the vision tower's MLP (PEFT matches a
// string against a module's whole name).
func (c *Stack) PEFTTargets() any {
	a := c.Cfg.Adapters
	if c.OmniConfig == nil {
		return a.Targets
	}
	return OmniTargetRegex(a.Targets)
}

// OmniTargetRegex is PEFTTargets' regular expression for targets.
func OmniTargetRegex(targets []string) string {
	return strings.ReplaceAll(omniDecoderPrefix, ".", `\.`) + `\d+\.(self_attn|mlp)\.(` + strings.Join(targets, "|") + ")"
}
