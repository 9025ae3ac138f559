package checkpoint

import (
	"fmt"
	"slices"

	"github.com/mose-llm/mose/internal/ckpt"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

// Named is a tensor with its name in a safetensors file.
type Named struct {
	Name string
	T    *torch.Tensor
}

// WriteTensors writes float32 tensors to a safetensors file (atomically).
func WriteTensors(s *torch.Scope, path string, ts []Named, meta map[string]string) error {
	out := make([]safetensors.Tensor, 0, len(ts))
	for _, n := range ts {
		t := n.T
		if t.DType() != torch.Float32 || t.Device() != torch.CPU {
			t = s.ToDevice(s.To(t, torch.Float32), torch.CPU)
		}
		if err := s.Err(); err != nil {
			return err
		}
		b, err := t.Bytes()
		if err != nil {
			return fmt.Errorf("%s: %w", n.Name, err)
		}
		out = append(out, safetensors.Tensor{Name: n.Name, DType: safetensors.F32, Shape: t.Shape(), Data: b})
	}
	return safetensors.WriteFile(path, out, meta)
}

// ReaderFunc reads a named tensor into a scope (nil with the error recorded).
type ReaderFunc func(s *torch.Scope, name string) *torch.Tensor

// WithFile opens a safetensors file and calls fn with a reader of its
// tensors as float32 on dev, and a scope for them; errors name the file.
// Every tensor read must be finite, and every tensor of the file must be
// read.
func WithFile(path string, dev torch.Device, fn func(s *torch.Scope, read ReaderFunc) error) error {
	f, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	rd := ckpt.NewReader(f)
	s := torch.NewScope()
	defer s.Close()
	used := map[string]bool{}
	read := func(s *torch.Scope, name string) *torch.Tensor {
		used[name] = true
		return rd.ReadFinite(s, name, torch.Float32, dev)
	}
	if err := fn(s, read); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, name := range f.Names() { // a tensor the model does not take is refused, not dropped
		if !used[name] {
			return fmt.Errorf("%s: tensor %q is not used by this recipe's adapters or trained projectors (adapters.*, model.train_projectors differ from the run that wrote it?)", path, name)
		}
	}
	return nil
}

// ReadInto copies the named tensors of a safetensors file into dst.
func ReadInto(path string, dev torch.Device, dst []Named) error {
	return WithFile(path, dev, func(s *torch.Scope, read ReaderFunc) error { return CopyInto(s, dst, read) })
}

// CopyInto reads each named tensor and copies it into its destination,
// checking shapes, without autograd.
func CopyInto(s *torch.Scope, dst []Named, read ReaderFunc) error {
	return torch.NoGrad(func() error {
		for _, d := range dst {
			c := s.Child()
			src := read(c, d.Name)
			err := c.Err()
			if err == nil && !slices.Equal(src.Shape(), d.T.Shape()) {
				err = fmt.Errorf("%s has shape %v, want %v", d.Name, src.Shape(), d.T.Shape())
			}
			if err == nil {
				err = d.T.CopyFrom(src)
			}
			c.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// NonFinite returns the name of the first tensor of ts holding NaN or Inf
// values, or "" when all are finite.
func NonFinite(s *torch.Scope, ts []Named) (string, error) {
	for _, n := range ts {
		ok, err := s.AllFinite(n.T)
		if err != nil {
			return "", err
		}
		if !ok {
			return n.Name, nil
		}
	}
	return "", nil
}
