package data

import (
	"runtime"
	"slices"
	"sync"
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
	errs := make([]error, len(d.Samples))
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			var dst []float32
			for i := range next {
				for j, in := range d.enc.spec.Inputs {
					n := in.Tokens * in.Dim
					dst = slices.Grow(dst[:0], n)[:n]
					if err := d.ReadFeatures(i, j, dst, &buf); err != nil {
						errs[i] = err
						break
					}
				}
			}
		}()
	}
	for i := range d.Samples {
		next <- i
	}
	close(next)
	wg.Wait()
	var p Problems
	for _, err := range errs {
		p.Add(err)
	}
	return p.Err()
}
