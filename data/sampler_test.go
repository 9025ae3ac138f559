package data

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomLengths(n int, lo, hi int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]int, n)
	for i := range l {
		l[i] = lo + r.IntN(hi-lo+1)
	}
	return l
}

func TestSamplerEpochIsPermutation(t *testing.T) {
	for _, opt := range []SamplerOptions{
		{BatchSize: 7, Seed: 3, Shuffle: true},
		{BatchSize: 7, Seed: 3, Shuffle: true, DropLast: true},
		{BatchSize: 7, Shuffle: false, Window: 1},
		{BatchSize: 100, Seed: 9, Shuffle: true},
	} {
		lengths := randomLengths(50, 10, 90, 1)
		s, err := NewSampler(lengths, opt)
		if err != nil {
			t.Fatal(err)
		}
		var seen []int
		for range s.BatchesPerEpoch() {
			b, _ := s.Next()
			if len(b) > opt.BatchSize || len(b) == 0 {
				t.Fatalf("%+v: batch of %d", opt, len(b))
			}
			seen = append(seen, b...)
		}
		if st := s.State(); st.Epoch != 1 || st.Cursor != 0 {
			t.Fatalf("%+v: state after one epoch %+v", opt, st)
		}
		want := 50
		if opt.DropLast {
			want = 49
		}
		slices.Sort(seen)
		if len(seen) != want || len(slices.Compact(seen)) != want {
			t.Fatalf("%+v: epoch covers %d distinct of %d", opt, len(slices.Compact(seen)), want)
		}
		if !opt.Shuffle && opt.Window == 1 {
			first, _ := NewSampler(lengths, opt)
			b, _ := first.Next()
			if !slices.Equal(b, []int{0, 1, 2, 3, 4, 5, 6}) {
				t.Fatalf("sequential sampler starts %v", b)
			}
		}
	}
}

func TestSamplerDeterministicAndSeeded(t *testing.T) {
	lengths := randomLengths(64, 10, 90, 2)
	run := func(seed uint64) [][]int {
		s, _ := NewSampler(lengths, SamplerOptions{BatchSize: 8, Seed: seed, Shuffle: true})
		var out [][]int
		for range 3 * s.BatchesPerEpoch() {
			b, _ := s.Next()
			out = append(out, b)
		}
		return out
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.EqualFunc(a, b, slices.Equal) {
		t.Fatal("same seed, different batches")
	}
	if slices.EqualFunc(a, c, slices.Equal) {
		t.Fatal("different seeds, same batches")
	}
	nb := len(a) / 3
	if slices.EqualFunc(a[:nb], a[nb:2*nb], slices.Equal) {
		t.Fatal("epochs 0 and 1 are identical")
	}
}

// TestSamplerResume: stopping after k batches, saving the state as JSON and
// resuming in a fresh sampler yields exactly the batches of an uninterrupted
// run, for stops mid-epoch, at and across epoch boundaries.
func TestSamplerResume(t *testing.T) {
	lengths := randomLengths(45, 5, 200, 3)
	opt := SamplerOptions{BatchSize: 4, Seed: 42, Shuffle: true, Window: 3}
	ref, _ := NewSampler(lengths, opt)
	nb := ref.BatchesPerEpoch() // 12
	total := 3*nb + 5
	var want [][]int
	for range total {
		b, _ := ref.Next()
		want = append(want, b)
	}
	for _, k := range []int{0, 1, 5, nb - 1, nb, nb + 1, 2*nb + 7, 3 * nb} {
		s, _ := NewSampler(lengths, opt)
		var got [][]int
		var st SamplerState
		for range k {
			var b []int
			b, st = s.Next()
			got = append(got, b)
		}
		if k == 0 {
			st = s.State()
		}
		blob, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		var back SamplerState
		if err := json.Unmarshal(blob, &back); err != nil {
			t.Fatal(err)
		}
		// The fresh sampler has another seed: the state carries it.
		fresh, _ := NewSampler(lengths, SamplerOptions{BatchSize: 4, Seed: 999, Shuffle: true, Window: 3})
		fresh.Next() // and it has moved on
		if err := fresh.Restore(back); err != nil {
			t.Fatal(err)
		}
		for len(got) < total {
			b, _ := fresh.Next()
			got = append(got, b)
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("resume after %d batches (state %s) diverges", k, blob)
		}
	}
}

func TestSamplerRestoreChecks(t *testing.T) {
	s, _ := NewSampler(randomLengths(10, 1, 5, 1), SamplerOptions{BatchSize: 3})
	for _, st := range []SamplerState{{Cursor: 5}, {Cursor: -1}, {Epoch: -1}} {
		if err := s.Restore(st); err == nil {
			t.Errorf("Restore(%+v) accepted", st)
		}
	}
	if err := s.Restore(SamplerState{Epoch: 2, Cursor: 4}); err != nil || s.State() != (SamplerState{Epoch: 3}) {
		t.Fatalf("end-of-epoch cursor not normalised: %v %+v", err, s.State())
	}
	if _, err := NewSampler(nil, SamplerOptions{BatchSize: 3}); err == nil {
		t.Fatal("empty sampler accepted")
	}
	if _, err := NewSampler([]int{1}, SamplerOptions{BatchSize: 3, DropLast: true}); err == nil {
		t.Fatal("sampler with no full batch accepted")
	}
}

// TestBucketingWaste: with widely varying lengths, bucketing keeps padding
// under 15% while plain shuffled batches waste far more.
func TestBucketingWaste(t *testing.T) {
	lengths := randomLengths(4000, 280, 700, 4) // Emotion-LLaMA-like: 260 slots + text
	bucketed, _ := NewSampler(lengths, SamplerOptions{BatchSize: 8, Seed: 1, Shuffle: true})
	plain, _ := NewSampler(lengths, SamplerOptions{BatchSize: 8, Seed: 1, Shuffle: true, Window: 1})
	for e := range 3 {
		wb, wp := bucketed.Waste(e), plain.Waste(e)
		t.Logf("epoch %d: padding waste %.1f%% bucketed, %.1f%% plain", e, 100*wb, 100*wp)
		if wb >= 0.15 || wp < 2*wb {
			t.Fatalf("epoch %d: waste %.3f bucketed vs %.3f plain", e, wb, wp)
		}
	}
}
