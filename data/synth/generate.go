package synth

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
)

// Config controls a generated dataset. Signal strengths are in units of the
// per-value noise standard deviation.
type Config struct {
	Preset Preset
	Seed   uint64
	Train  int // training samples
	Eval   int // evaluation samples

	// VisualSignal is the amplitude of the visual label's prototype on the
	// visual tokens that carry it; VisualFraction of the tokens (at least
	// one) carry it, the others carry only cue and noise. The evidence is
	// spread over many weak tokens.
	VisualSignal   float64
	VisualFraction float64
	// AudioSignal is the amplitude of the audio label's prototype on the one
	// audio token: dense evidence in a single token.
	AudioSignal float64
	// Cue is the amplitude of the genuineness cue: +Cue along a modality's cue
	// direction when that modality shows the true label, -Cue when not.
	Cue float64
	// Noise is the standard deviation of the Gaussian noise on every value.
	Noise float64
}

// DefaultConfig returns the demo's settings for preset p: 2160 training and
// 540 evaluation samples (each subset × label cell equally filled).
func DefaultConfig(p Preset) Config {
	return Config{
		Preset: p, Seed: 1, Train: 2160, Eval: 540,
		VisualSignal: 3, VisualFraction: 0.25, AudioSignal: 6, Cue: 2, Noise: 1,
	}
}

// ErrConfig reports an invalid Config; ErrNotEmpty an output directory that
// exists, is not empty and may not be replaced.
var (
	ErrConfig   = inputerr.New("invalid synthetic data config")
	ErrNotEmpty = fsutil.ErrNotEmpty
)

func (c Config) validate() error {
	if err := c.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return nil
}

func (c Config) check() error {
	switch {
	case c.Train < len(Subsets) || c.Eval < len(Subsets):
		return fmt.Errorf("need at least %d train and eval samples, got %d and %d", len(Subsets), c.Train, c.Eval)
	case c.Preset.Visual.Dim <= len(Labels) || c.Preset.Audio.Dim <= len(Labels):
		return fmt.Errorf("feature dims must exceed %d (labels + cue)", len(Labels))
	case c.Preset.Audio.Tokens != 1:
		return fmt.Errorf("the audio input must have one token")
	case c.Preset.Visual.Tokens < 1:
		return fmt.Errorf("the visual input needs tokens")
	case c.VisualFraction <= 0 || c.VisualFraction > 1:
		return fmt.Errorf("visual fraction %v not in (0, 1]", c.VisualFraction)
	case c.Noise < 0 || c.VisualSignal <= 0 || c.AudioSignal <= 0 || c.Cue <= 0:
		return fmt.Errorf("signal and cue must be > 0 and noise >= 0")
	}
	return nil
}

// Truth is what the generator knows about a sample beyond its manifest line.
type Truth struct {
	ID                          string
	Subset                      string
	Label                       int // true label
	VisualLabel                 int // label whose prototype the visual tokens carry
	AudioLabel                  int // label whose prototype the audio token carries
	VisualGenuine, AudioGenuine bool
}

// Result summarises a generated dataset.
type Result struct {
	Dir         string
	Train, Eval int
	TrainTruth  []Truth
	EvalTruth   []Truth
	Manifests   []string // train.jsonl, eval.jsonl
}

// Generate writes a dataset to dir: train.jsonl, eval.jsonl, one .npy per
// sample and input under features/<input>/, and synth.json recording the
// config. It writes to a temporary directory and renames it into place, so
// dir is never half-written; an existing non-empty dir is replaced only if
// replace is true.
func Generate(dir string, cfg Config, replace bool) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tmp, err := fsutil.TempDir(dir)
	if err != nil {
		return nil, err
	}
	res, err := generateInto(tmp, cfg)
	if err == nil {
		err = fsutil.ReplaceDir(tmp, dir, replace)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	res.Dir = dir
	for i, m := range res.Manifests {
		res.Manifests[i] = filepath.Join(dir, m)
	}
	return res, nil
}

func generateInto(dir string, cfg Config) (*Result, error) {
	p := cfg.Preset
	w := newWorld(cfg.Seed, p.Visual.Dim, p.Audio.Dim)
	for _, in := range []data.Input{p.Visual, p.Audio} {
		if err := os.MkdirAll(filepath.Join(dir, "features", in.Name), 0o755); err != nil {
			return nil, err
		}
	}
	res := &Result{Train: cfg.Train, Eval: cfg.Eval}
	splits := []struct {
		name string
		n    int
	}{{"train", cfg.Train}, {"eval", cfg.Eval}}
	for k, sp := range splits {
		split, n := sp.name, sp.n
		// Each split has its own stream, so the train split does not depend
		// on the eval size and vice versa.
		r := rand.New(rand.NewPCG(cfg.Seed, uint64(k+1)))
		samples := make([]data.Sample, n)
		truth := make([]Truth, n)
		for i := range n {
			s, tr, err := sample(dir, split, i, r, w, cfg)
			if err != nil {
				return nil, err
			}
			samples[i], truth[i] = s, tr
		}
		if err := data.WriteManifest(filepath.Join(dir, split+".jsonl"), samples); err != nil {
			return nil, err
		}
		if split == "train" {
			res.TrainTruth = truth
		} else {
			res.EvalTruth = truth
		}
	}
	res.Manifests = []string{"train.jsonl", "eval.jsonl"}
	return res, writeInfo(filepath.Join(dir, "synth.json"), cfg)
}

// sample draws sample i of a split and writes its features.
//
// Sample i belongs to subset i mod 3 and has true label (i/3) mod 9, so every
// subset × label cell is filled equally. The other modality's label in a
// conflict subset is uniform over the eight other labels.
func sample(dir, split string, i int, r *rand.Rand, w world, cfg Config) (data.Sample, Truth, error) {
	nl := len(Labels)
	tr := Truth{
		ID:     fmt.Sprintf("%s-%05d", split, i),
		Subset: Subsets[i%len(Subsets)],
		Label:  (i / len(Subsets)) % nl,
	}
	other := (tr.Label + 1 + r.IntN(nl-1)) % nl
	switch tr.Subset {
	case data.SubsetVideoAligned:
		tr.VisualLabel, tr.AudioLabel, tr.VisualGenuine = tr.Label, other, true
	case data.SubsetAudioAligned:
		tr.VisualLabel, tr.AudioLabel, tr.AudioGenuine = other, tr.Label, true
	default:
		tr.VisualLabel, tr.AudioLabel, tr.VisualGenuine, tr.AudioGenuine = tr.Label, tr.Label, true, true
	}
	p := cfg.Preset
	vis := visualTokens(r, w, cfg, tr)
	aud := audioToken(r, w, cfg, tr)
	s := data.Sample{
		ID: tr.ID, Subset: tr.Subset, Label: Labels[tr.Label], Subtitle: Subtitle(r),
		Features: map[string]string{
			p.Visual.Name: path.Join("features", p.Visual.Name, tr.ID+".npy"),
			p.Audio.Name:  path.Join("features", p.Audio.Name, tr.ID+".npy"),
		},
	}
	for _, f := range []struct {
		in    data.Input
		shape []int
		v     []float32
	}{{p.Visual, []int{p.Visual.Tokens, p.Visual.Dim}, vis}, {p.Audio, []int{p.Audio.Dim}, aud}} {
		if err := writeNpy(filepath.Join(dir, filepath.FromSlash(s.Features[f.in.Name])), f.shape, f.v); err != nil {
			return s, tr, err
		}
	}
	return s, tr, nil
}

func sign(genuine bool) float32 {
	if genuine {
		return 1
	}
	return -1
}

// visualTokens: every token = cue ± noise; a random VisualFraction of them
// also carry VisualSignal × the visual label's prototype.
func visualTokens(r *rand.Rand, w world, cfg Config, tr Truth) []float32 {
	T, D := cfg.Preset.Visual.Tokens, cfg.Preset.Visual.Dim
	carry := max(1, int(math.Round(cfg.VisualFraction*float64(T))))
	carriers := r.Perm(T)[:carry]
	isCarrier := make([]bool, T)
	for _, t := range carriers {
		isCarrier[t] = true
	}
	cue := float32(cfg.Cue) * sign(tr.VisualGenuine)
	sig := float32(cfg.VisualSignal)
	proto := w.visualProto[tr.VisualLabel]
	out := make([]float32, T*D)
	for t := range T {
		row := out[t*D : (t+1)*D]
		for d := range D {
			v := cue*w.visualCue[d] + float32(cfg.Noise*r.NormFloat64())
			if isCarrier[t] {
				v += sig * proto[d]
			}
			row[d] = v
		}
	}
	return out
}

// audioToken = AudioSignal × audio label's prototype ± cue + noise.
func audioToken(r *rand.Rand, w world, cfg Config, tr Truth) []float32 {
	D := cfg.Preset.Audio.Dim
	cue := float32(cfg.Cue) * sign(tr.AudioGenuine)
	sig := float32(cfg.AudioSignal)
	proto := w.audioProto[tr.AudioLabel]
	out := make([]float32, D)
	for d := range D {
		out[d] = sig*proto[d] + cue*w.audioCue[d] + float32(cfg.Noise*r.NormFloat64())
	}
	return out
}

func writeNpy(p string, shape []int, v []float32) error {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if err := npy.Write(f, &npy.Array{DType: npy.Float32, Shape: shape, Data: v}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeInfo records how the dataset was made, for reproducibility.
func writeInfo(p string, cfg Config) error {
	info := map[string]any{
		"generator": "mose synth-data",
		"preset":    cfg.Preset.Name,
		"inputs":    []data.Input{cfg.Preset.Visual, cfg.Preset.Audio},
		"seed":      cfg.Seed, "train": cfg.Train, "eval": cfg.Eval,
		"visual_signal": cfg.VisualSignal, "visual_fraction": cfg.VisualFraction,
		"audio_signal": cfg.AudioSignal, "cue": cfg.Cue, "noise": cfg.Noise,
		"labels": Labels, "subsets": Subsets,
	}
	return fsutil.WriteFile(p, 0o644, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	})
}
