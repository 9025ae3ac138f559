package data

import (
	"fmt"
)

// OpenSamples is Open for samples built in memory (`mose predict` with a
// sample given by flags): name stands for the manifest in error messages and
// Options.Root (required) is the root feature paths are relative to. Every
// sample must name a feature file for each input and one of spec's labels;
// the files are checked like Open does. Problems come back together.
func OpenSamples(name string, samples []Sample, spec Spec, tok Tokenizer, opt Options) (*Dataset, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("data: %s: %w: no samples", name, ErrEmpty)
	}
	if opt.Root == "" {
		return nil, fmt.Errorf("data: %s: OpenSamples needs a root", name)
	}
	enc, err := NewEncoder(spec, tok, EncoderOptions{MaxLen: opt.MaxLen, PadID: opt.PadID})
	if err != nil {
		return nil, err
	}
	root, err := NewRoot(opt.Root)
	if err != nil {
		return nil, err
	}
	d := &Dataset{Manifest: name, Samples: append([]Sample(nil), samples...), enc: enc, root: root}
	var probs Problems
	d.Examples = make([]Example, len(samples))
	d.paths = make([][]string, len(samples))
	for i := range d.Samples {
		missing := false
		for _, in := range spec.Inputs {
			if d.Samples[i].Features[in.Name] == "" {
				probs.Add(d.sampleErr(i, "", fmt.Errorf("%w \"features.%s\"", ErrMissingField, in.Name)))
				missing = true
			}
		}
		if missing {
			continue
		}
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
