package trainer

import "math"

// Schedule gives the learning rate of an optimizer step.
type Schedule struct {
	Kind   string  // cosine | constant | linear
	LR     float64 // peak learning rate
	MinLR  float64 // floor of cosine/linear decay
	Warmup int     // linear warmup steps from 0
	Total  int     // total optimizer steps (the decay horizon)
}

// At returns the learning rate of step (0-based): a linear warmup to LR over
// Warmup steps, then constant, or a cosine / linear decay to MinLR at Total.
func (s Schedule) At(step int) float64 {
	if step < s.Warmup {
		return s.LR * float64(step+1) / float64(s.Warmup)
	}
	span := s.Total - s.Warmup
	if s.Kind == "constant" || span <= 0 {
		return s.LR
	}
	progress := math.Min(1, float64(step-s.Warmup)/float64(span))
	switch s.Kind {
	case "linear":
		return s.MinLR + (s.LR-s.MinLR)*(1-progress)
	default: // cosine
		return s.MinLR + (s.LR-s.MinLR)*0.5*(1+math.Cos(math.Pi*progress))
	}
}
