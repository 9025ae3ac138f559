package mer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/fsutil"
)

// Feature names a modality input and the extractor folder holding one
// <clip>.npy per clip (e.g. hubert=.../HL-UTT).
type Feature struct {
	Name string
	Dir  string
}

// ParseFeature parses "name=DIR".
func ParseFeature(s string) (Feature, error) {
	name, dir, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(dir) == "" {
		return Feature{}, fmt.Errorf("feature %q: want name=DIR", s)
	}
	return Feature{Name: strings.TrimSpace(name), Dir: dir}, nil
}

// Options configures Import.
type Options struct {
	Annotations string    // "name n_frames label valence" lines
	Transcripts string    // CSV with NameColumn and TextColumn
	Features    []Feature // one folder per modality input
	Out         string    // manifest to write
	// Root is the data root the manifest's paths are relative to (default:
	// the manifest's directory). Feature folders must lie inside it.
	Root string
	// Subset for every sample (default data.SubsetGeneral: MER2023 has no
	// conflict annotation).
	Subset string
	// Labels allowed after mapping through Synonyms (default: the nine
	// CA-MER labels).
	Labels   []string
	Synonyms map[string]string // default: data.Synonyms
	// NameColumn and TextColumn of the transcript CSV (default "name" and
	// "sentence").
	NameColumn, TextColumn string
	// AllowMissingText gives clips without a transcript an empty subtitle
	// instead of failing.
	AllowMissingText bool
	// Reasons optionally names a MERR JSON file; ReasonField (default
	// "smp_reason_caption") is the caption used as the sample's reason.
	Reasons, ReasonField string
}

// DefaultLabels are the nine canonical labels (data.EmotionLabels).
var DefaultLabels = data.EmotionLabels

// Result summarises an import.
type Result struct {
	Samples int
	ByLabel map[string]int
	Shapes  map[string][]int // feature name → shape found
}

// Import reads the MER layout and writes the manifest atomically. It checks
// every clip (label, transcript, one readable float .npy per feature folder,
// the same shape within a folder) and reports all problems together; nothing
// is written if there is any.
func Import(opt Options) (*Result, error) {
	if err := opt.defaults(); err != nil {
		return nil, err
	}
	rootDir := opt.Root
	if rootDir == "" {
		rootDir = filepath.Dir(opt.Out)
	}
	root, err := data.NewRoot(rootDir)
	if err != nil {
		return nil, err
	}
	anns, err := readFile(opt.Annotations, func(f *os.File) ([]Annotation, error) { return ReadAnnotations(f, opt.Annotations) })
	if err != nil {
		return nil, err
	}
	texts, err := readFile(opt.Transcripts, func(f *os.File) (map[string]string, error) {
		return ReadTranscripts(f, opt.Transcripts, opt.NameColumn, opt.TextColumn)
	})
	if err != nil {
		return nil, err
	}
	var reasons map[string]string
	if opt.Reasons != "" {
		if reasons, err = ReadReasons(opt.Reasons, opt.ReasonField); err != nil {
			return nil, err
		}
	}

	res := &Result{ByLabel: map[string]int{}, Shapes: map[string][]int{}}
	shapeFrom := map[string]string{} // feature → clip that set the shape
	var probs data.Problems
	samples := make([]data.Sample, 0, len(anns))
	for _, a := range anns {
		bad := func(path string, err error) {
			probs.Add(&data.SampleError{File: opt.Annotations, Line: a.Line, ID: a.Name, Path: path, Err: err})
		}
		label, err := Canonical(a.Label, opt.Synonyms, opt.Labels)
		if err != nil {
			bad("", err)
			continue
		}
		text, ok := texts[a.Name]
		if !ok && !opt.AllowMissingText {
			bad("", fmt.Errorf("%w: no transcript in %s", data.ErrMissingField, opt.Transcripts))
			continue
		}
		s := data.Sample{
			ID: a.Name, Subset: opt.Subset, Label: label, Subtitle: text, Reason: reasons[a.Name],
			Features: map[string]string{}, Meta: map[string]any{"n_frames": a.Frames},
		}
		if a.HasVal {
			s.Meta["valence"] = a.Valence
		}
		ok = true
		for _, f := range opt.Features {
			p := filepath.Join(f.Dir, a.Name+".npy")
			rel, err := root.Rel(p)
			if err == nil {
				var h npy.Header
				if h, err = npy.ReadFileHeader(p); err == nil {
					if want, seen := res.Shapes[f.Name]; !seen {
						res.Shapes[f.Name], shapeFrom[f.Name] = h.Shape, a.Name
					} else if !slices.Equal(want, h.Shape) {
						err = fmt.Errorf("%w: %v, but clip %s has %v", data.ErrShape, h.Shape, shapeFrom[f.Name], want)
					}
				}
			}
			if err != nil {
				bad(p, err)
				ok = false
				break
			}
			s.Features[f.Name] = rel
		}
		if ok {
			samples = append(samples, s)
			res.ByLabel[label]++
		}
	}
	if err := probs.Err(); err != nil {
		return nil, err
	}
	if err := data.WriteManifest(opt.Out, samples); err != nil {
		return nil, err
	}
	res.Samples = len(samples)
	return res, nil
}

func (o *Options) defaults() error {
	switch {
	case o.Annotations == "":
		return errors.New("mer: no annotation file")
	case o.Transcripts == "":
		return errors.New("mer: no transcript CSV")
	case len(o.Features) == 0:
		return errors.New("mer: no feature folders")
	case o.Out == "":
		return errors.New("mer: no output manifest")
	}
	seen := map[string]bool{}
	for _, f := range o.Features {
		if seen[f.Name] {
			return fmt.Errorf("mer: feature %q given twice", f.Name)
		}
		seen[f.Name] = true
		if st, err := os.Stat(f.Dir); err != nil || !st.IsDir() {
			return fmt.Errorf("mer: feature %s: %w: %s is not a directory", f.Name, data.ErrMissingFile, f.Dir)
		}
	}
	if o.Subset == "" {
		o.Subset = data.SubsetGeneral
	}
	if !slices.Contains(data.DefaultSubsets, o.Subset) {
		return fmt.Errorf("mer: %w %q", data.ErrUnknownSubset, o.Subset)
	}
	if o.Labels == nil {
		o.Labels = DefaultLabels
	}
	if o.Synonyms == nil {
		o.Synonyms = data.Synonyms
	}
	if o.NameColumn == "" {
		o.NameColumn = "name"
	}
	if o.TextColumn == "" {
		o.TextColumn = "sentence"
	}
	if o.ReasonField == "" {
		o.ReasonField = "smp_reason_caption"
	}
	return nil
}

func readFile[T any](path string, parse func(*os.File) (T, error)) (T, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		var zero T
		return zero, &data.SampleError{File: path, Err: fmt.Errorf("%w: %w", data.ErrMissingFile, err)}
	}
	defer f.Close()
	return parse(f)
}
