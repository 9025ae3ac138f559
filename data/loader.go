package data

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
)

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	Mode Mode
	// Workers build batches in parallel (default: GOMAXPROCS, at most 4).
	Workers int
	// Prefetch is how many batches may wait ready ahead of the consumer
	// (default 4). Memory use is bounded by Prefetch+Workers+1 batches.
	Prefetch int
	// Epochs stops the loader (Next returns io.EOF) when the sampler reaches
	// this epoch; 0 runs forever.
	Epochs int
	// Shards > 1 cuts every sampler batch into Shards contiguous slices of
	// near-equal size (data-parallel ranks) and loads slice Shard only; a
	// batch whose slice is empty (a short last batch) is skipped. Every
	// shard's loader runs the same sampler, so they stay in step.
	Shard, Shards int
}

// ShardOf is slice shard of shards of a batch of sample indices: the
// contiguous part [shard·n/shards, (shard+1)·n/shards).
func ShardOf(idx []int, shard, shards int) []int {
	if shards <= 1 {
		return idx
	}
	n := len(idx)
	return idx[shard*n/shards : (shard+1)*n/shards]
}

// LoaderStats are running totals over the batches handed out by Next.
type LoaderStats struct {
	Batches, Rows                   int
	Tokens, PadTokens, AnswerTokens int
	Truncated                       int
}

// Waste is the overall padding fraction.
func (s LoaderStats) Waste() float64 {
	if s.Tokens == 0 {
		return 0
	}
	return float64(s.PadTokens) / float64(s.Tokens)
}

// Loader prefetches batches on goroutines, in sampler order. It owns the
// sampler from NewLoader on. Next and Close must be called from one goroutine.
type Loader struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	order  chan *job
	err    error

	mu    sync.Mutex
	stats LoaderStats
}

type job struct {
	idx []int
	st  SamplerState
	res chan result // buffered 1
}

type result struct {
	b   *Batch
	err error
}

// NewLoader starts loading batches of ds in the order s yields them. It stops
// when ctx is cancelled, on Close, after opt.Epochs, or on the first error.
func NewLoader(ctx context.Context, ds *Dataset, s *Sampler, opt LoaderOptions) *Loader {
	if opt.Workers <= 0 {
		opt.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	if opt.Prefetch <= 0 {
		opt.Prefetch = 4
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Loader{ctx: ctx, cancel: cancel, order: make(chan *job, opt.Prefetch)}
	jobs := make(chan *job)

	l.wg.Add(1)
	go func() { // producer: sampler order, bounded by the order queue
		defer l.wg.Done()
		defer close(jobs)
		defer close(l.order)
		for opt.Epochs <= 0 || s.State().Epoch < opt.Epochs {
			idx, st := s.Next()
			if idx = ShardOf(idx, opt.Shard, opt.Shards); len(idx) == 0 {
				continue
			}
			j := &job{idx: idx, st: st, res: make(chan result, 1)}
			select {
			case l.order <- j:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range opt.Workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var buf []byte
			for j := range jobs {
				if ctx.Err() != nil {
					j.res <- result{err: ctx.Err()}
					continue
				}
				b, err := ds.Batch(j.idx, opt.Mode, &buf)
				if b != nil {
					b.State = j.st
				}
				j.res <- result{b, err}
			}
		}()
	}
	return l
}

// Next returns the next batch in sampler order. It returns io.EOF after the
// last epoch, ctx's error once cancelled, and the first loading error (a
// *SampleError) for good: the loader stops at the first bad sample.
func (l *Loader) Next() (*Batch, error) {
	if l.err != nil {
		return nil, l.err
	}
	if err := l.ctx.Err(); err != nil {
		l.err = err
		return nil, err
	}
	var j *job
	var ok bool
	select {
	case j, ok = <-l.order:
	case <-l.ctx.Done():
	}
	if j == nil {
		if err := l.ctx.Err(); err != nil {
			l.err = err
		} else if !ok {
			l.err = io.EOF
		}
		return nil, l.err
	}
	var r result
	select {
	case r = <-j.res:
	case <-l.ctx.Done():
		l.err = l.ctx.Err()
		return nil, l.err
	}
	if r.err != nil {
		l.err = r.err
		l.cancel()
		return nil, r.err
	}
	l.mu.Lock()
	l.stats.Batches++
	l.stats.Rows += r.b.B
	l.stats.Tokens += r.b.B * r.b.T
	l.stats.PadTokens += r.b.PadTokens
	l.stats.AnswerTokens += r.b.AnswerTokens
	l.stats.Truncated += r.b.Truncated
	l.mu.Unlock()
	return r.b, nil
}

// Stats returns totals over the batches returned so far.
func (l *Loader) Stats() LoaderStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// Close stops the loader and waits for its goroutines to exit. It returns the
// loading error that stopped it, if any (not io.EOF or cancellation).
func (l *Loader) Close() error {
	l.cancel()
	l.wg.Wait()
	if l.err == nil || errors.Is(l.err, io.EOF) || errors.Is(l.err, context.Canceled) || errors.Is(l.err, context.DeadlineExceeded) {
		return nil
	}
	return l.err
}
