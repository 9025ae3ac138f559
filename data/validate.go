package data

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
)

// ValidateOptions configures Validate.
type ValidateOptions struct {
	Options
	// HeadersOnly checks dtype and shape from the headers without reading
	// the values (no NaN/Inf check); much faster on large feature sets.
	HeadersOnly bool
	// Workers read feature files in parallel (default 4).
	Workers int
}

// LengthStats summarises sequence lengths (feature slots included).
type LengthStats struct {
	Min, Max, P50, P95 int
	Mean               float64
}

// Report is the outcome of Validate.
type Report struct {
	Manifest string
	// Samples counts the manifest lines that parsed; Valid those of them
	// with no problem at all.
	Samples, Valid int
	BySubset       map[string]int
	ByLabel        map[string]int
	BySubsetLabel  map[string]map[string]int
	// Labels is the spec's label order, used to print the table.
	Labels []string
	// Lengths are over the valid samples; zero if no tokenizer was given.
	Lengths   LengthStats
	Truncated int
	Problems  Problems
}

// Validate checks a whole dataset like Open does, but reads every feature
// value (unless HeadersOnly) and does not stop at problems: they are listed
// in the report. tok may be nil, in which case token lengths are not
// computed. The error is for failures that prevent checking at all (bad
// spec, missing root or manifest).
func Validate(manifest string, spec Spec, tok Tokenizer, opt ValidateOptions) (*Report, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	var enc *Encoder
	if tok != nil {
		var err error
		if enc, err = NewEncoder(spec, tok, EncoderOptions{MaxLen: opt.MaxLen, PadID: opt.PadID}); err != nil {
			return nil, err
		}
	}
	rootDir := opt.Root
	if rootDir == "" {
		rootDir = filepath.Dir(manifest)
	}
	root, err := NewRoot(rootDir)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Manifest: manifest, BySubset: map[string]int{}, ByLabel: map[string]int{},
		BySubsetLabel: map[string]map[string]int{}, Labels: spec.Labels,
	}
	samples, err := ReadManifest(manifest, manifestOptions(spec, opt.Options))
	if err != nil {
		var p *Problems
		if !errors.As(err, &p) {
			return nil, err
		}
		rep.Problems = *p
		if len(samples) == 0 && errors.Is(err, ErrMissingFile) {
			return nil, err // the manifest itself is missing
		}
	}
	rep.Samples = len(samples)
	for _, s := range samples {
		rep.BySubset[s.Subset]++
		rep.ByLabel[s.Label]++
		if rep.BySubsetLabel[s.Subset] == nil {
			rep.BySubsetLabel[s.Subset] = map[string]int{}
		}
		rep.BySubsetLabel[s.Subset][s.Label]++
	}

	bad := checkFiles(manifest, root, spec, samples, opt)
	var lengths []int
	for i, s := range samples {
		if err := bad[i]; err != nil {
			rep.Problems.Add(err)
			continue
		}
		if enc != nil {
			ex, err := enc.Encode(s, i)
			if err != nil {
				rep.Problems.Add(&SampleError{File: manifest, Line: s.Line, ID: s.ID, Err: err})
				continue
			}
			lengths = append(lengths, ex.Len())
			if ex.Truncated {
				rep.Truncated++
			}
		}
		rep.Valid++
	}
	rep.Lengths = lengthStats(lengths)
	return rep, nil
}

// checkFiles resolves and reads every feature file of samples in parallel and
// returns the first problem of each sample (nil if none).
func checkFiles(manifest string, root *Root, spec Spec, samples []Sample, opt ValidateOptions) []error {
	workers := opt.Workers
	if workers <= 0 {
		workers = 4
	}
	return eachSample(len(samples), workers, func(i int, sc *featureScratch) error {
		s := &samples[i]
		for _, in := range spec.Inputs {
			rel := s.Features[in.Name]
			p, err := root.Resolve(rel)
			if err == nil && opt.HeadersOnly {
				err = checkHeader(in, p)
			} else if err == nil {
				err = readFeature(in, p, sc.floats(in.Tokens*in.Dim), &sc.buf)
			}
			if err != nil {
				return &SampleError{File: manifest, Line: s.Line, ID: s.ID, Path: rel, Err: err}
			}
		}
		return nil
	})
}

func lengthStats(l []int) LengthStats {
	if len(l) == 0 {
		return LengthStats{}
	}
	s := slices.Sorted(slices.Values(l))
	sum := 0
	for _, v := range s {
		sum += v
	}
	q := func(p float64) int { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return LengthStats{Min: s[0], Max: s[len(s)-1], P50: q(0.5), P95: q(0.95), Mean: float64(sum) / float64(len(s))}
}

// WriteText prints the report for humans.
func (r *Report) WriteText(w io.Writer) error {
	var err error
	p := func(format string, args ...any) {
		if err == nil {
			_, err = fmt.Fprintf(w, format, args...)
		}
	}
	p("manifest: %s\n", r.Manifest)
	p("samples: %d parsed, %d valid; problems: %d\n", r.Samples, r.Valid, r.Problems.Len())
	subsets := ordered(r.BySubset, DefaultSubsets)
	labels := ordered(r.ByLabel, r.Labels)
	p("\n%-16s", "subset \\ label")
	for _, l := range labels {
		p(" %9s", l)
	}
	p(" %9s\n", "total")
	for _, s := range subsets {
		p("%-16s", s)
		for _, l := range labels {
			p(" %9d", r.BySubsetLabel[s][l])
		}
		p(" %9d\n", r.BySubset[s])
	}
	p("%-16s", "total")
	for _, l := range labels {
		p(" %9d", r.ByLabel[l])
	}
	p(" %9d\n", r.Samples)
	if r.Lengths.Max > 0 {
		ls := r.Lengths
		p("\ntoken lengths (with feature slots): min %d, mean %.1f, p50 %d, p95 %d, max %d; truncated subtitles: %d\n",
			ls.Min, ls.Mean, ls.P50, ls.P95, ls.Max, r.Truncated)
	} else {
		p("\ntoken lengths: not computed (no tokenizer)\n")
	}
	if r.Problems.Len() > 0 {
		p("\nproblems (%d):\n", r.Problems.Len())
		for _, e := range r.Problems.Errs {
			p("  %v\n", e)
		}
		if r.Problems.Omitted > 0 {
			p("  ... and %d more\n", r.Problems.Omitted)
		}
	}
	return err
}

// ordered lists the keys of m: those in order first, in that order, then the
// rest sorted.
func ordered(m map[string]int, order []string) []string {
	var out []string
	for _, k := range order {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for _, k := range sortedKeys(m) {
		if !slices.Contains(order, k) {
			out = append(out, k)
		}
	}
	return out
}
