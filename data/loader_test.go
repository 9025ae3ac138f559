package data

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

func openFixture(t *testing.T, n int) (*fixture, *Dataset) {
	t.Helper()
	fx := newFixture(t, n)
	ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return fx, ds
}

// waitGoroutines fails unless the goroutine count drops back to base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines leaked: %d > %d\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoaderOrderEpochsAndResume(t *testing.T) {
	_, ds := openFixture(t, 23)
	opt := SamplerOptions{BatchSize: 4, Seed: 7, Shuffle: true, Window: 2}
	ref, _ := NewSampler(ds.Lengths(), opt)
	var want [][]int
	for range 2 * ref.BatchesPerEpoch() {
		b, _ := ref.Next()
		want = append(want, b)
	}

	base := runtime.NumGoroutine()
	s, _ := NewSampler(ds.Lengths(), opt)
	l := NewLoader(context.Background(), ds, s, LoaderOptions{Workers: 3, Prefetch: 2, Epochs: 2})
	var got [][]int
	var states []SamplerState
	for {
		b, err := l.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Index)
		states = append(states, b.State)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("loader order differs from sampler order")
	}
	st := l.Stats()
	if st.Batches != len(want) || st.Rows != 46 || st.AnswerTokens != 46*2 || st.Waste() < 0 || st.Waste() >= 1 {
		t.Fatalf("stats %+v", st)
	}

	// Resume from the state carried by batch k: the rest is identical.
	for _, k := range []int{2, len(want)/2 - 1, len(want) / 2} {
		s2, _ := NewSampler(ds.Lengths(), SamplerOptions{BatchSize: 4, Seed: 1, Shuffle: true, Window: 2})
		if err := s2.Restore(states[k]); err != nil {
			t.Fatal(err)
		}
		l2 := NewLoader(context.Background(), ds, s2, LoaderOptions{Epochs: 2})
		var rest [][]int
		for {
			b, err := l2.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			rest = append(rest, b.Index)
		}
		l2.Close()
		if !slices.EqualFunc(rest, want[k+1:], slices.Equal) {
			t.Fatalf("resume after batch %d diverges", k)
		}
	}
}

func TestLoaderCancel(t *testing.T) {
	_, ds := openFixture(t, 30)
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	s, _ := NewSampler(ds.Lengths(), SamplerOptions{BatchSize: 2, Shuffle: true})
	l := NewLoader(ctx, ds, s, LoaderOptions{Workers: 4, Prefetch: 3}) // runs forever
	for range 5 {
		if _, err := l.Next(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond) // let the queue fill and the producer block
	cancel()
	if _, err := l.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close after cancel: %v", err)
	}
	waitGoroutines(t, base)

	// Close without cancel, consumer never reading.
	s2, _ := NewSampler(ds.Lengths(), SamplerOptions{BatchSize: 2})
	l2 := NewLoader(context.Background(), ds, s2, LoaderOptions{Workers: 2, Prefetch: 1})
	time.Sleep(10 * time.Millisecond)
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	waitGoroutines(t, base)
}

func TestLoaderError(t *testing.T) {
	fx, ds := openFixture(t, 8)
	writeNpy(t, filepath.Join(fx.dir, fx.samples[5].Features["frames"]), 1, []int{4, 3}, append(ramp(11, 0), nan32))
	base := runtime.NumGoroutine()
	s, _ := NewSampler(ds.Lengths(), SamplerOptions{BatchSize: 2, Window: 1})
	l := NewLoader(context.Background(), ds, s, LoaderOptions{Workers: 2, Epochs: 1})
	var err error
	n := 0
	for err == nil {
		_, err = l.Next()
		n++
	}
	if !errors.Is(err, ErrNonFinite) || n != 3 {
		t.Fatalf("after %d batches: %v", n, err)
	}
	if _, again := l.Next(); !errors.Is(again, ErrNonFinite) {
		t.Fatalf("error not sticky: %v", again)
	}
	if cerr := l.Close(); !errors.Is(cerr, ErrNonFinite) {
		t.Fatalf("Close: %v", cerr)
	}
	waitGoroutines(t, base)
}

// TestLoaderShards checks that the shards of a batch are disjoint, cover it
// in order, and carry the batch's sampler state; a short last batch with
// fewer samples than shards leaves some shards without that batch.
func TestLoaderShards(t *testing.T) {
	for _, c := range []struct{ n, bs, shards int }{{23, 4, 2}, {23, 6, 3}, {5, 4, 3}} {
		_, ds := openFixture(t, c.n)
		opt := SamplerOptions{BatchSize: c.bs, Seed: 3}
		ref, _ := NewSampler(ds.Lengths(), opt)
		var want [][]int
		for range ref.BatchesPerEpoch() {
			b, _ := ref.Next()
			want = append(want, b)
		}
		got := make([][]int, len(want)) // batches reassembled from the shards
		for shard := range c.shards {
			s, _ := NewSampler(ds.Lengths(), opt)
			l := NewLoader(context.Background(), ds, s, LoaderOptions{Epochs: 1, Shard: shard, Shards: c.shards})
			i := 0
			for {
				b, err := l.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				for i < len(want) && len(ShardOf(want[i], shard, c.shards)) == 0 {
					i++
				}
				if i == len(want) || !slices.Equal(b.Index, ShardOf(want[i], shard, c.shards)) {
					t.Fatalf("%+v shard %d: batch %v is not slice %d of sampler batch %d", c, shard, b.Index, shard, i)
				}
				if wantSt := (SamplerState{Seed: 3, Epoch: (i + 1) / len(want), Cursor: (i + 1) % len(want)}); b.State != wantSt {
					t.Fatalf("%+v shard %d: state %+v, want %+v", c, shard, b.State, wantSt)
				}
				got[i] = append(got[i], b.Index...)
				i++
			}
			l.Close()
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("%+v: the shards do not reassemble the batches:\n%v\n%v", c, got, want)
		}
	}
}
