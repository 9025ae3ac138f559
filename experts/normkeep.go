package experts

import "github.com/mose-llm/mose/internal/torch"

// KeepNorms moves the tensors of the norm measurement (RecordNorms) made
// since the last Norms call into s, so that they outlive the scope of the
// forward that recorded them: activation checkpointing runs each layer in a
// scope of its own and frees it before Norms reads the step's measurement.
func (set *Set) KeepNorms(s *torch.Scope) {
	if set.norms == nil {
		return
	}
	for _, t := range set.norms.sums {
		s.Own(t)
	}
	for _, t := range set.norms.counts {
		s.Own(t)
	}
}

// PauseNorms stops the norm measurement until the returned function is
// called, keeping what was recorded: a recompute of layers already measured
// must not count them twice.
func (set *Set) PauseNorms() (resume func()) {
	r := set.norms
	set.norms = nil
	return func() { set.norms = r }
}
