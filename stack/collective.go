package stack

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

// Rank is this process's rank in the data-parallel group (0 without one).
func (c *Stack) Rank() int {
	if c.Group == nil {
		return 0
	}
	return c.Group.Rank()
}

// World is the number of data-parallel ranks (1 without a group).
func (c *Stack) World() int {
	if c.Group == nil {
		return 1
	}
	return c.Group.World()
}

// AllReduce sums t across the ranks in place (nothing without a group).
func (c *Stack) AllReduce(t *torch.Tensor) error {
	if c.Group == nil || t == nil {
		return nil
	}
	if err := c.Group.AllReduceSum(t); err != nil {
		return fmt.Errorf("data-parallel: %w", err)
	}
	return nil
}

// ReduceSums all-reduces a pass's router sums (Tracker.Sums) in place,
// adding the time spent to *comm. Nil sums or no group: nothing.
func (c *Stack) ReduceSums(s *torch.Scope, sums *torch.Tensor, comm *time.Duration) error {
	if err := s.Err(); err != nil {
		return err
	}
	t0 := time.Now()
	err := c.AllReduce(sums)
	*comm += time.Since(t0)
	return err
}

// Agree all-reduces counts (float64, exact for integers below 2^53) and
// returns the sums.
func (c *Stack) Agree(counts []float64) ([]float64, error) {
	if c.Group == nil {
		return counts, nil
	}
	s := torch.NewScope()
	defer s.Close()
	t := s.FromFloat64(counts, int64(len(counts)))
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := c.AllReduce(t); err != nil {
		return nil, err
	}
	return t.Float64s()
}

// GatherPredictions combines every rank's predictions of ds (each rank
// predicted its own shard; idx[i] is the dataset index of preds[i]) into
// all of ds's, in dataset order, on every rank: one all-reduce of a
// (len(ds), 5) buffer of (predicted, label, prediction, answer NLL, answer
// tokens).
func (c *Stack) GatherPredictions(ds *data.Dataset, preds []metrics.Prediction, idx []int) ([]metrics.Prediction, error) {
	if c.Group == nil {
		return preds, nil
	}
	const cols = 5 // present, label, prediction, answer NLL, answer tokens
	n := ds.Len()
	buf := make([]float64, cols*n)
	for i, p := range preds {
		row := buf[cols*idx[i] : cols*idx[i]+cols]
		row[0], row[1], row[2], row[3], row[4] = 1, float64(p.Label), float64(p.Pred), p.NLL, float64(p.Tokens)
	}
	s := torch.NewScope()
	defer s.Close()
	t := s.FromFloat64(buf, int64(n), cols)
	if err := s.Err(); err != nil {
		return nil, err
	}
	if err := c.AllReduce(t); err != nil {
		return nil, err
	}
	v, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]metrics.Prediction, 0, n)
	for j := range n {
		row := v[cols*j : cols*j+cols]
		if row[0] != 1 {
			return nil, fmt.Errorf("%w: eval sample %d (%s) was predicted by %v ranks, want 1", ErrRanks, j, ds.Samples[j].ID, row[0])
		}
		out = append(out, metrics.Prediction{ID: ds.Samples[j].ID, Subset: ds.Samples[j].Subset, Label: int(row[1]), Pred: int(row[2]),
			NLL: row[3], Tokens: int(row[4])})
	}
	return out, nil
}
