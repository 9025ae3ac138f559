package experts

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/mose-llm/mose/internal/torch"
)

// Named is a parameter slice under its stable, PEFT-like checkpoint name.
type Named struct {
	Name string
	T    *torch.Tensor
}

// slice is where one named parameter lives inside the fused tensors.
type slice struct {
	name       string
	param      *torch.Tensor
	dim        int64 // dimension sliced
	start, len int64
}

// slices lists the named parameters of m:
//
//	lora:  <target>.lora_A.weight (r,in), <target>.lora_B.weight (out,r)
//	mose:  <target>.mose.<group>.lora_A.weight (r,in)
//	       <target>.mose.<group>.experts.<k>.lora_B.weight (out,r)
//	       <target>.mose.<group>.gate.weight (K,in), for groups with K > 1
func (m *Mixture) slices() []slice {
	r := m.rank
	if m.set.Config.Method == MethodLoRA {
		return []slice{{m.Name + ".lora_A.weight", m.A, 0, 0, r}, {m.Name + ".lora_B.weight", m.B, 1, 0, r}}
	}
	var out []slice
	slot, gateRow := int64(0), int64(0)
	for gi, g := range m.Groups {
		p := m.Name + ".mose." + g + "."
		out = append(out, slice{p + "lora_A.weight", m.A, 0, int64(gi) * r, r})
		for k := range m.K[gi] {
			out = append(out, slice{p + "experts." + strconv.Itoa(k) + ".lora_B.weight", m.B, 1, slot * r, r})
			slot++
		}
		if m.K[gi] > 1 {
			k := int64(m.K[gi])
			out = append(out, slice{p + "gate.weight", m.Gate.Weight(), 0, gateRow, k})
			gateRow += k
		}
	}
	return out
}

// Names returns every stable parameter name, in checkpoint order.
func (set *Set) Names() []string {
	var names []string
	for _, m := range set.Mixtures {
		for _, sl := range m.slices() {
			names = append(names, sl.name)
		}
	}
	return names
}

// Export returns every parameter slice under its stable name, as contiguous
// detached tensors owned by s (for saving).
func (set *Set) Export(s *torch.Scope) []Named {
	var out []Named
	for _, m := range set.Mixtures {
		for _, sl := range m.slices() {
			t := s.Contiguous(s.Narrow(s.Detach(sl.param), sl.dim, sl.start, sl.len))
			out = append(out, Named{sl.name, t})
		}
	}
	return out
}

// Import copies parameters from read, which returns the tensor stored under
// a name (or nil with an error recorded in s). Every name of Names must be
// present with the right shape; the copy happens without autograd.
func (set *Set) Import(s *torch.Scope, read func(s *torch.Scope, name string) *torch.Tensor) error {
	return torch.NoGrad(func() error {
		for _, m := range set.Mixtures {
			for _, sl := range m.slices() {
				c := s.Child()
				src := read(c, sl.name)
				dst := c.Narrow(sl.param, sl.dim, sl.start, sl.len)
				if err := c.Err(); err != nil {
					c.Close()
					return err
				}
				if got, want := src.Shape(), dst.Shape(); !slices.Equal(got, want) {
					c.Close() // the shapes are read before the tensors are freed
					return fmt.Errorf("%w: %s has shape %v, the adapter wants %v", ErrConfig, sl.name, got, want)
				}
				err := dst.CopyFrom(src)
				c.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", sl.name, err)
				}
			}
		}
		return nil
	})
}
