package trainer

import (
	"fmt"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// lead reports whether this process writes the run's files (rank 0).
func (r *run) lead() bool { return r.c.Rank() == 0 }

// seed is the libtorch seed of micro-batch micro of step: checkpoint.SeedFor, offset by
// the rank so that ranks draw different dropout masks and gate noise (rank 0
// draws a single process's).
func (r *run) seed(step, micro int) int64 {
	return checkpoint.SeedFor(r.c.Cfg.Run.Seed, step, micro) + int64(r.c.Rank())<<40
}

// defineGrads gives every parameter a (zero) gradient, so that all ranks
// flatten the same tensors before their first step.
func defineGrads(params []stack.Param) error {
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
func reduceGrads(c *stack.Stack, s *torch.Scope, extra *torch.Tensor) ([]float64, error) {
	parts := make([]*torch.Tensor, 0, len(c.Params)+1)
	for _, p := range c.Params {
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
	if err := c.AllReduce(flat); err != nil {
		return nil, err
	}
	err := torch.NoGrad(func() error {
		off := int64(0)
		for i, p := range c.Params {
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
// Rank 0's.
func (r *run) checkInSync() error {
	c := r.c
	if c.Group == nil {
		return nil
	}
	s := torch.NewScope()
	defer s.Close()
	vals := []*torch.Tensor{s.FromFloat64([]float64{float64(r.st.Step)}, 1)}
	for i, p := range c.Params {
		vals = append(vals, s.Unsqueeze(s.MulScalar(s.Sum(s.To(s.Detach(p.T), torch.Float64)), float64(i+1)), 0))
	}
	mine := s.Cat(vals, 0)
	root := s.Clone(mine)
	if err := s.Err(); err != nil {
		return err
	}
	if err := c.Group.Broadcast(root, 0); err != nil {
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
		return fmt.Errorf("%w: rank %d is at step %v, rank 0 at step %v (did every rank resume the same checkpoint? run.output_dir must be the same directory for all)", stack.ErrRanks, c.Rank(), a[0], b[0])
	}
	for i := 1; i < len(a); i++ {
		if a[i] != b[i] {
			return fmt.Errorf("%w: rank %d's %s differs from rank 0's (a different checkpoint, model or seed)", stack.ErrRanks, c.Rank(), c.Params[i-1].Name)
		}
	}
	return nil
}
