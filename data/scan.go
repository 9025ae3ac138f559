package data

import (
	"runtime"
)

// ScanFeatures reads every feature file of the dataset once, on workers
// goroutines (0: one per CPU, at most 8), checking dtype, shape and that
// every value is finite, so that a NaN or Inf is found before training
// rather than at the batch that reads it. Memory stays at one file per
// worker. It returns nil or a *Problems holding the first problem of each
// bad sample (each a *SampleError naming the manifest line and file).
func (d *Dataset) ScanFeatures(workers int) error {
	if workers <= 0 {
		workers = min(runtime.NumCPU(), 8)
	}
	if d.omni != nil {
		return d.scanOmni(workers)
	}
	errs := eachSample(len(d.Samples), workers, func(i int, s *featureScratch) error {
		for j, in := range d.enc.spec.Inputs {
			if err := d.ReadFeatures(i, j, s.floats(in.Tokens*in.Dim), &s.buf); err != nil {
				return err
			}
		}
		return nil
	})
	var p Problems
	for _, err := range errs {
		p.Add(err)
	}
	return p.Err()
}
