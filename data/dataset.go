package data

import (
	"fmt"
	"path/filepath"
)

// Options configures Open and Validate.
type Options struct {
	// Root is the data root feature paths are relative to; default: the
	// manifest's directory.
	Root string
	// MaxLen bounds sequence length (0: unbounded); see EncoderOptions.
	MaxLen int
	// PadID fills feature slots and padding.
	PadID int32
	// Subsets allowed in the manifest; nil means DefaultSubsets.
	Subsets []string
	// Lazy skips reading every feature file's header at Open; bad files then
	// surface when the loader reads them.
	Lazy bool
	// Media makes an omni dataset's media samples' processor outputs
	// (omniprep.Cache); nil refuses media samples.
	Media MediaPrep
	// ContentKeys hashes every omni "inputs" file at open, for the
	// encoder-output cache's keys (OmniKey); a media sample's key is its
	// processor cache key.
	ContentKeys bool
	// MediaCached, when set, reports whether the towers' outputs of the
	// sample with content key k are cached: a batch whose rows all are is
	// made without reading its pixels and features (Media.Deferred).
	MediaCached func(k string) bool
	// ShardRank and ShardWorld keep an omni dataset's samples i with
	// i % ShardWorld == ShardRank only (ShardWorld 0 or 1: all): a
	// data-parallel rank preparing its part of the data cache.
	ShardRank, ShardWorld int
}

// Dataset is an opened manifest: its samples, their encoded examples and the
// resolved feature files. It is safe for concurrent reads.
type Dataset struct {
	Manifest string
	Samples  []Sample
	Examples []Example

	enc   *Encoder
	root  *Root
	paths [][]string // [sample][input]: resolved file

	omni        []omniSample // an omni dataset's samples (OpenOmni), else nil
	omniTokens  OmniTokens
	mediaCached func(string) bool // Options.MediaCached
}

// Open reads a manifest, resolves and checks its feature files against spec
// (headers only: dtype and shape), and encodes every sample with tok. All
// problems are reported together as a *Problems error.
func Open(manifest string, spec Spec, tok Tokenizer, opt Options) (*Dataset, error) {
	enc, err := NewEncoder(spec, tok, EncoderOptions{MaxLen: opt.MaxLen, PadID: opt.PadID})
	if err != nil {
		return nil, err
	}
	// The manifest first: when it is missing, that is the error to report.
	samples, err := ReadManifest(manifest, manifestOptions(spec, opt))
	if err != nil {
		return nil, err
	}
	rootDir := opt.Root
	if rootDir == "" {
		rootDir = filepath.Dir(manifest)
	}
	root, err := NewRoot(rootDir)
	if err != nil {
		return nil, err
	}
	d := &Dataset{Manifest: manifest, Samples: samples, enc: enc, root: root}
	var probs Problems
	d.Examples = make([]Example, len(samples))
	d.paths = make([][]string, len(samples))
	for i := range samples {
		paths, ex, err := d.prepare(i, !opt.Lazy)
		if err != nil {
			probs.Add(err)
			continue
		}
		d.paths[i], d.Examples[i] = paths, ex
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	return d, nil
}

func manifestOptions(spec Spec, opt Options) ManifestOptions {
	names := make([]string, len(spec.Inputs))
	for i, in := range spec.Inputs {
		names[i] = in.Name
	}
	return ManifestOptions{Labels: spec.Labels, Subsets: opt.Subsets, Inputs: names}
}

// prepare resolves sample i's feature files (checking headers if asked) and
// encodes it.
func (d *Dataset) prepare(i int, headers bool) ([]string, Example, error) {
	s := &d.Samples[i]
	spec := d.enc.spec
	paths := make([]string, len(spec.Inputs))
	for j, in := range spec.Inputs {
		rel := s.Features[in.Name]
		p, err := d.root.Resolve(rel)
		if err == nil && headers {
			err = checkHeader(in, p)
		}
		if err != nil {
			return nil, Example{}, d.sampleErr(i, rel, err)
		}
		paths[j] = p
	}
	ex, err := d.enc.Encode(*s, i)
	if err != nil {
		return nil, Example{}, d.sampleErr(i, "", err)
	}
	return paths, ex, nil
}

func (d *Dataset) sampleErr(i int, path string, err error) error {
	s := &d.Samples[i]
	return &SampleError{File: d.Manifest, Line: s.Line, ID: s.ID, Path: path, Err: err}
}

// Len is the number of samples.
func (d *Dataset) Len() int { return len(d.Samples) }

// Spec is the model spec the dataset was opened for.
func (d *Dataset) Spec() Spec { return d.enc.spec }

// Encoder is the encoder of the dataset's examples.
func (d *Dataset) Encoder() *Encoder { return d.enc }

// Lengths returns every example's sequence length (for a Sampler). In score
// mode rows are prompt plus a label answer; the gold answer's length is a
// close enough bucketing key.
func (d *Dataset) Lengths() []int {
	l := make([]int, len(d.Examples))
	for i := range d.Examples {
		l[i] = d.Examples[i].Len()
	}
	return l
}

// Truncated is the number of samples whose subtitle was shortened.
func (d *Dataset) Truncated() int {
	n := 0
	for i := range d.Examples {
		if d.Examples[i].Truncated {
			n++
		}
	}
	return n
}

// ReadFeatures reads input j (spec order) of sample i into dst, which must
// hold Tokens*Dim values, checking dtype, shape and finiteness. buf, if not
// nil, is a read buffer reused across calls. Errors are *SampleError.
func (d *Dataset) ReadFeatures(i, j int, dst []float32, buf *[]byte) error {
	in := d.enc.spec.Inputs[j]
	if len(dst) != in.Tokens*in.Dim {
		return fmt.Errorf("data: ReadFeatures: destination has %d values, input %q needs %d", len(dst), in.Name, in.Tokens*in.Dim)
	}
	if buf == nil {
		buf = new([]byte)
	}
	if err := readFeature(in, d.paths[i][j], dst, buf); err != nil {
		return d.sampleErr(i, d.Samples[i].Features[in.Name], err)
	}
	return nil
}

// Batch assembles the samples idx into a batch for mode, reading their
// features. buf, if not nil, is a read buffer reused across calls.
func (d *Dataset) Batch(idx []int, mode Mode, buf *[]byte) (*Batch, error) {
	if d.omni != nil {
		return d.omniBatch(idx, mode)
	}
	exs := make([]*Example, len(idx))
	for k, i := range idx {
		if i < 0 || i >= len(d.Examples) {
			return nil, fmt.Errorf("data: Batch: sample index %d out of range [0, %d)", i, len(d.Examples))
		}
		exs[k] = &d.Examples[i]
	}
	if buf == nil {
		buf = new([]byte)
	}
	return d.enc.Collate(exs, mode, func(g, j int, dst []float32) error {
		return d.ReadFeatures(idx[g], j, dst, buf)
	})
}

// ScoreBatch is Batch in ModeScore: one row per (sample, label), for ranking
// labels by answer log-likelihood.
func (d *Dataset) ScoreBatch(idx []int) (*Batch, error) { return d.Batch(idx, ModeScore, nil) }
