package experts

import (
	"fmt"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/modality"
)

// normRecorder accumulates, over one forward pass, the experts' output norm
// on visual and on audio tokens: the measurement behind the contribution
// modality weights.
type normRecorder struct {
	sums, counts []*torch.Tensor // each (2): visual, audio
}

// record adds one target's delta y (B,T,out) to the sums.
func (r *normRecorder) record(s *torch.Scope, y, onehot *torch.Tensor) {
	n := s.NormDims(s.Detach(y), 2, []int64{-1}, true) // (B,T,1); a statistic: no graph kept
	va := s.Narrow(onehot, -1, modality.Visual, 2)     // (B,T,2): visual, audio columns
	bt := []int64{0, 1}
	r.sums = append(r.sums, s.SumDims(s.Mul(va, n), bt, false)) // (2)
	r.counts = append(r.counts, s.SumDims(va, bt, false))       // (2)
}

// RecordNorms turns the norm measurement of training forwards on or off (it
// costs three small ops per target and forward).
func (set *Set) RecordNorms(on bool) {
	if on {
		set.norms = &normRecorder{}
	} else {
		set.norms = nil
	}
}

// Norms returns the mean per-token expert output norm, summed over targets,
// on visual and on audio tokens of the forward passes since the last call
// (zero for a modality without tokens), and starts a new measurement. It
// reads two numbers back to the host. Call it before the scope of those
// passes closes.
func (set *Set) Norms(s *torch.Scope) (visual, audio float64, err error) {
	c := s.Child()
	defer c.Close()
	sums := set.NormSums(c)
	if sums == nil {
		return 0, 0, c.Err()
	}
	if err := c.Err(); err != nil {
		return 0, 0, err
	}
	v, err := sums.Float64s()
	if err != nil {
		return 0, 0, err
	}
	return set.NormMeans(v)
}

// NormSumsLen is the length of NormSums' vector.
const NormSumsLen = 4

// NormSums returns the measurement of Norms as sums, to be added over
// data-parallel ranks before NormMeans: a (NormSumsLen) float32 tensor in s of the
// norm sums on visual and audio tokens and their token counts (nil when
// nothing was recorded), and starts a new measurement.
func (set *Set) NormSums(s *torch.Scope) *torch.Tensor {
	r := set.norms
	if r == nil || len(r.sums) == 0 {
		return nil
	}
	sums := s.SumDims(s.Stack(r.sums, 0), []int64{0}, false)     // (2)
	counts := s.SumDims(s.Stack(r.counts, 0), []int64{0}, false) // (2)
	r.sums, r.counts = r.sums[:0], r.counts[:0]
	return s.Cat([]*torch.Tensor{sums, counts}, 0)
}

// NormMeans turns NormSums' values into Norms' means.
func (set *Set) NormMeans(v []float64) (visual, audio float64, err error) {
	if len(v) != NormSumsLen {
		return 0, 0, fmt.Errorf("experts: norm readback has %d values", len(v))
	}
	per := float64(len(set.Mixtures))
	mean := func(sum, count float64) float64 {
		if count == 0 {
			return 0
		}
		return sum / (count / per) // counts were added once per target
	}
	return mean(v[0], v[2]), mean(v[1], v[3]), nil
}
