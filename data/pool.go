package data

import (
	"slices"
	"sync"
)

// featureScratch is one worker's reusable buffers for reading feature files.
type featureScratch struct {
	buf []byte
	dst []float32
}

// floats returns dst resized to n values (its contents are undefined).
func (f *featureScratch) floats(n int) []float32 {
	f.dst = slices.Grow(f.dst[:0], n)[:n]
	return f.dst
}

// eachSample runs check(i, scratch) for i in [0, n) on workers goroutines,
// each with its own scratch buffers, and returns the errors by index.
func eachSample(n, workers int, check func(i int, s *featureScratch) error) []error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s featureScratch
			for i := range next {
				errs[i] = check(i, &s)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}
