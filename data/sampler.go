package data

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
)

// SamplerState is the whole state of a Sampler: the position of the next
// batch. Saving it in a checkpoint and restoring it continues with exactly
// the batch an uninterrupted run would have produced next.
type SamplerState struct {
	Epoch  int    `json:"epoch"`
	Seed   uint64 `json:"seed"`
	Cursor int    `json:"cursor"` // index of the next batch within Epoch
}

// DefaultBucketWindow is the number of batches whose samples are sorted by
// length together (the bucketing window) when SamplerOptions.Window is 0.
const DefaultBucketWindow = 32

// SamplerOptions configures a Sampler.
type SamplerOptions struct {
	BatchSize int
	Seed      uint64
	// Shuffle permutes samples and batch order each epoch (training). Without
	// it the order is the dataset order, still bucketed (evaluation).
	Shuffle bool
	// Window is the bucketing window in batches: each run of Window*BatchSize
	// consecutive (shuffled) samples is sorted by length before being cut into
	// batches. 1 disables bucketing; 0 means DefaultBucketWindow.
	Window int
	// DropLast drops the final partial batch of each epoch.
	DropLast bool
}

// Sampler yields batches of sample indices, epoch after epoch. Each epoch's
// plan is a pure function of (seed, epoch), computed once per epoch, so
// restoring a state costs one plan regardless of the cursor. It is not safe
// for concurrent use.
type Sampler struct {
	lengths []int
	opt     SamplerOptions
	st      SamplerState
	nb      int // batches per epoch

	planEpoch int
	plan      [][]int
}

// NewSampler builds a sampler over samples with the given sequence lengths,
// starting at epoch 0.
func NewSampler(lengths []int, opt SamplerOptions) (*Sampler, error) {
	if opt.BatchSize <= 0 {
		return nil, fmt.Errorf("data: sampler: batch size %d, must be > 0", opt.BatchSize)
	}
	if opt.Window < 0 {
		return nil, fmt.Errorf("data: sampler: bucketing window %d, must be >= 0", opt.Window)
	}
	if opt.Window == 0 {
		opt.Window = DefaultBucketWindow
	}
	n := len(lengths)
	nb := (n + opt.BatchSize - 1) / opt.BatchSize
	if opt.DropLast {
		nb = n / opt.BatchSize
	}
	if nb == 0 {
		return nil, fmt.Errorf("data: sampler: %w: %d samples for batch size %d", ErrEmpty, n, opt.BatchSize)
	}
	return &Sampler{
		lengths: slices.Clone(lengths), opt: opt, nb: nb,
		st: SamplerState{Seed: opt.Seed}, planEpoch: -1,
	}, nil
}

// BatchesPerEpoch is the number of batches in every epoch.
func (s *Sampler) BatchesPerEpoch() int { return s.nb }

// State returns the position of the next batch.
func (s *Sampler) State() SamplerState { return s.st }

// Restore continues from st (as returned by State or Batch.State).
func (s *Sampler) Restore(st SamplerState) error {
	if st.Epoch < 0 || st.Cursor < 0 || st.Cursor > s.nb {
		return fmt.Errorf("data: sampler: cannot restore %+v with %d batches per epoch (dataset or batch size changed?)", st, s.nb)
	}
	if st.Cursor == s.nb {
		st.Epoch, st.Cursor = st.Epoch+1, 0
	}
	if st.Seed != s.st.Seed {
		s.plan = nil // plans depend on the seed
	}
	s.st = st
	return nil
}

// Next returns the next batch of sample indices (owned by the caller) and the
// state after it.
func (s *Sampler) Next() ([]int, SamplerState) {
	plan := s.Plan(s.st.Epoch)
	b := slices.Clone(plan[s.st.Cursor])
	s.st.Cursor++
	if s.st.Cursor == s.nb {
		s.st.Epoch, s.st.Cursor = s.st.Epoch+1, 0
	}
	return b, s.st
}

// Plan returns the batches of epoch e under the current seed (cached; do not
// modify).
func (s *Sampler) Plan(e int) [][]int {
	if s.planEpoch == e && s.plan != nil {
		return s.plan
	}
	s.plan = s.buildPlan(s.st.Seed, e)
	s.planEpoch = e
	return s.plan
}

func (s *Sampler) buildPlan(seed uint64, epoch int) [][]int {
	n, bs := len(s.lengths), s.opt.BatchSize
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	var rng *rand.PCG
	if s.opt.Shuffle {
		rng = rand.NewPCG(seed, uint64(epoch))
		shuffle(rng, len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	window := s.opt.Window * bs
	plan := make([][]int, 0, s.nb+1)
	for start := 0; start < n; start += window {
		chunk := order[start:min(start+window, n)]
		if s.opt.Window > 1 {
			// Stable: equal lengths keep their shuffled order.
			slices.SortStableFunc(chunk, func(a, b int) int { return s.lengths[a] - s.lengths[b] })
		}
		for i := 0; i < len(chunk); i += bs {
			plan = append(plan, chunk[i:min(i+bs, len(chunk))])
		}
	}
	if len(plan) > s.nb { // DropLast: the only partial batch is the last one
		plan = plan[:s.nb]
	}
	if s.opt.Shuffle {
		shuffle(rng, len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	}
	return plan
}

// Waste is the padding fraction of epoch e's plan: padded positions over all
// positions when every batch is padded to its longest sample.
func (s *Sampler) Waste(e int) float64 {
	var pad, total int
	for _, b := range s.Plan(e) {
		m, sum := 0, 0
		for _, i := range b {
			m = max(m, s.lengths[i])
			sum += s.lengths[i]
		}
		pad += m*len(b) - sum
		total += m * len(b)
	}
	if total == 0 {
		return 0
	}
	return float64(pad) / float64(total)
}

// shuffle is Fisher–Yates over PCG with Lemire's unbiased bounded integers.
// It is written out (rather than rand.Shuffle) so that plans, and therefore
// resumed runs, stay identical across Go releases: PCG's output is specified.
func shuffle(r *rand.PCG, n int, swap func(i, j int)) {
	for i := n - 1; i > 0; i-- {
		swap(i, int(boundedUint(r, uint64(i+1))))
	}
}

func boundedUint(r *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}
