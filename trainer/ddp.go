package trainer

import (
	"errors"
	"fmt"
	"time"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/metrics"
)

// Collective is the process group of a data-parallel run (dist.Group): the
// ranks that each train on their slice of every global batch. Sums are in
// place and leave the same values on every rank.
type Collective interface {
	Rank() int
	World() int
	AllReduceSum(t *torch.Tensor) error
	Broadcast(t *torch.Tensor, root int) error
	Barrier() error
}

// ErrRanks is a disagreement between the ranks of a data-parallel run.
var ErrRanks = errors.New("data-parallel ranks disagree")

// rank and world of c's run (0 and 1 without a group).
func (c *components) rank() int {
	if c.group == nil {
		return 0
	}
	return c.group.Rank()
}

func (c *components) world() int {
	if c.group == nil {
		return 1
	}
	return c.group.World()
}

// lead reports whether this process writes the run's files (rank 0).
func (r *run) lead() bool { return r.c.rank() == 0 }

// seed is the libtorch seed of micro-batch micro of step: seedFor, offset by
// the rank so that ranks draw different dropout masks and gate noise (rank 0
// draws a single process's).
func (r *run) seed(step, micro int) int64 {
	return seedFor(r.c.cfg.Run.Seed, step, micro) + int64(r.c.rank())<<40
}

// allReduce sums t across the ranks in place (nothing without a group).
func (c *components) allReduce(t *torch.Tensor) error {
	if c.group == nil || t == nil {
		return nil
	}
	if err := c.group.AllReduceSum(t); err != nil {
		return fmt.Errorf("data-parallel: %w", err)
	}
	return nil
}

// reduceSums all-reduces a pass's router sums (Tracker.Sums) in place,
// adding the time spent to *comm. Nil sums or no group: nothing.
func (c *components) reduceSums(s *torch.Scope, sums *torch.Tensor, comm *time.Duration) error {
	if err := s.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	err := c.allReduce(sums)
	*comm += time.Since(t0)
	return err
}

// agree all-reduces counts (float64, exact for integers below 2^53) and
// returns the sums.
func (c *components) agree(counts []float64) ([]float64, error) {
	if c.group == nil {
		return counts, nil
	}
	s := torch.NewScope()
	defer s.Close()
	t := s.FromFloat64(counts, int64(len(counts)))
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := c.allReduce(t); err != nil {
		return nil, err
	}
	return t.Float64s()
}

// defineGrads gives every parameter a (zero) gradient, so that all ranks
// flatten the same tensors before their first step.
func defineGrads(params []Param) error {
	s := torch.NewScope()
	defer s.Close()
	var zero *torch.Tensor
	for _, p := range params {
		term := s.MulScalar(s.Sum(p.T), 0)
		if zero == nil {
			zero = term
		} else {
			zero = s.Add(zero, term)
		}
	}
	if err := s.Err(); err != nil || zero == nil {
		return err
	}
	return zero.Backward()
}

// reduceGrads sums every parameter's gradient and extra (host values, e.g.
// the step's loss shares) across the ranks in one all-reduce of a flat
// float32 buffer, writes the sums back into the gradients and returns the
// summed extra values.
func (c *components) reduceGrads(s *torch.Scope, extra *torch.Tensor) ([]float64, error) {
	parts := make([]*torch.Tensor, 0, len(c.params)+1)
	for _, p := range c.params {
		g := s.Grad(p.T)
		if g == nil {
			return nil, fmt.Errorf("data-parallel: %s has no gradient", p.Name)
		}
		parts = append(parts, s.Flatten(s.To(g, torch.Float32), 0, -1))
	}
	n := len(parts)
	parts = append(parts, s.Flatten(s.To(extra, torch.Float32), 0, -1))
	flat := s.Contiguous(s.Cat(parts, 0)) // (Σ numel + extra)
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := c.allReduce(flat); err != nil {
		return nil, err
	}
	err := torch.NoGrad(func() error {
		off := int64(0)
		for i, p := range c.params {
			g := s.Grad(p.T)
			m := parts[i].Numel()
			src := s.To(s.View(s.Narrow(flat, 0, off, m), g.Shape()...), g.DType())
			if err := s.Err(); err != nil {
				return err
			}
			if err := g.CopyFrom(src); err != nil {
				return err
			}
			off += m
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rest := s.Narrow(flat, 0, flat.Numel()-parts[n].Numel(), parts[n].Numel())
	if err := s.Err(); err != nil {
		return nil, err
	}
	return rest.Float64s()
}

// checkInSync refuses to train unless every rank holds rank 0's step and
// trainable weights (the same checkpoint, the same initialisation): it
// compares each rank's step and a weighted sum of its parameters with
// rank 0's.
func (r *run) checkInSync() error {
	c := r.c
	if c.group == nil {
		return nil
	}
	s := torch.NewScope()
	defer s.Close()
	vals := []*torch.Tensor{s.FromFloat64([]float64{float64(r.st.Step)}, 1)}
	for i, p := range c.params {
		vals = append(vals, s.Unsqueeze(s.MulScalar(s.Sum(s.To(s.Detach(p.T), torch.Float64)), float64(i+1)), 0))
	}
	mine := s.Cat(vals, 0)
	root := s.Clone(mine)
	if err := s.Err(); err != nil {
		return err
	}
	if err := c.group.Broadcast(root, 0); err != nil {
		return fmt.Errorf("data-parallel: %w", err)
	}
	a, err := mine.Float64s()
	if err != nil {
		return err
	}
	b, err := root.Float64s()
	if err != nil {
		return err
	}
	if a[0] != b[0] {
		return fmt.Errorf("%w: rank %d is at step %v, rank 0 at step %v (did every rank resume the same checkpoint? run.output_dir must be the same directory for all)", ErrRanks, c.rank(), a[0], b[0])
	}
	for i := 1; i < len(a); i++ {
		if a[i] != b[i] {
			return fmt.Errorf("%w: rank %d's %s differs from rank 0's (a different checkpoint, model or seed)", ErrRanks, c.rank(), c.params[i-1].Name)
		}
	}
	return nil
}

// gatherPredictions combines every rank's predictions of ds (each rank
// predicted its own shard; idx[i] is the dataset index of preds[i]) into
// all of ds's, in dataset order, on every rank: one all-reduce of a
// (len(ds), 3) buffer of (predicted, label, prediction).
func (c *components) gatherPredictions(ds *data.Dataset, preds []metrics.Prediction, idx []int) ([]metrics.Prediction, error) {
	if c.group == nil {
		return preds, nil
	}
	n := ds.Len()
	buf := make([]float64, 3*n)
	for i, p := range preds {
		j := idx[i]
		buf[3*j], buf[3*j+1], buf[3*j+2] = 1, float64(p.Label), float64(p.Pred)
	}
	s := torch.NewScope()
	defer s.Close()
	t := s.FromFloat64(buf, int64(n), 3)
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := c.allReduce(t); err != nil {
		return nil, err
	}
	v, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]metrics.Prediction, 0, n)
	for j := range n {
		if v[3*j] != 1 {
			return nil, fmt.Errorf("%w: eval sample %d (%s) was predicted by %v ranks, want 1", ErrRanks, j, ds.Samples[j].ID, v[3*j])
		}
		out = append(out, metrics.Prediction{ID: ds.Samples[j].ID, Subset: ds.Samples[j].Subset, Label: int(v[3*j+1]), Pred: int(v[3*j+2])})
	}
	return out, nil
}
