// Package ckpt moves tensors between libtorch and safetensors files, and
// refuses non-finite values where they must not be (ReadFinite).
package ckpt

import (
	"fmt"

	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/torch"
)

var toTorch = map[safetensors.DType]torch.DType{
	safetensors.F32: torch.Float32, safetensors.F16: torch.Float16, safetensors.BF16: torch.BFloat16,
	safetensors.F64: torch.Float64, safetensors.I64: torch.Int64, safetensors.I32: torch.Int32,
	safetensors.I16: torch.Int16, safetensors.I8: torch.Int8, safetensors.U8: torch.Uint8,
	safetensors.BOOL: torch.Bool,
}

// TorchDType maps a safetensors dtype to libtorch's.
func TorchDType(d safetensors.DType) (torch.DType, error) {
	if t, ok := toTorch[d]; ok {
		return t, nil
	}
	return 0, fmt.Errorf("%w: %s has no libtorch equivalent mose supports", safetensors.ErrDtype, d)
}

// FileDType maps a libtorch dtype to safetensors'.
func FileDType(d torch.DType) (safetensors.DType, error) {
	for f, t := range toTorch {
		if t == d {
			return f, nil
		}
	}
	return "", fmt.Errorf("%w: %v", safetensors.ErrDtype, d)
}

// Source is what Reader reads from: a safetensors file or checkpoint.
type Source interface {
	Info(name string) (safetensors.TensorInfo, error)
	ReadInto(name string, dst []byte) error
}

// Reader copies tensors from a safetensors source into libtorch, one at a
// time through a reused buffer, so that loading needs the weights' size plus
// the largest tensor, not twice the weights.
type Reader struct {
	src Source
	buf []byte
}

// NewReader returns a Reader over src.
func NewReader(src Source) *Reader { return &Reader{src: src} }

// Read loads tensor name into s, converted to dtype dt on device dev.
// Intermediate copies are freed before it returns.
func (r *Reader) Read(s *torch.Scope, name string, dt torch.DType, dev torch.Device) *torch.Tensor {
	if s.Err() != nil {
		return nil
	}
	info, err := r.src.Info(name)
	if err != nil {
		s.Fail(err)
		return nil
	}
	fileDT, err := TorchDType(info.DType)
	if err != nil {
		s.Fail(fmt.Errorf("%s: tensor %q: %w", info.Path, name, err))
		return nil
	}
	if int64(cap(r.buf)) < info.Size {
		r.buf = nil // let the old buffer go before the larger one is made
		r.buf = make([]byte, info.Size)
	}
	buf := r.buf[:info.Size]
	if err := r.src.ReadInto(name, buf); err != nil {
		s.Fail(err)
		return nil
	}
	tmp := s.Child()
	defer tmp.Close()
	t := tmp.FromBytes(buf, fileDT, info.Shape...)
	if dt != fileDT {
		t = tmp.To(t, dt)
	}
	if dev != torch.CPU {
		t = tmp.ToDevice(t, dev)
	}
	if tmp.Err() != nil {
		return nil
	}
	return s.Own(tmp.Keep(t))
}

// ReadFinite is Read that fails s (naming the tensor) when the tensor holds
// NaN or Inf values: adapters and checkpoints are refused rather than
// loaded into non-finite results.
func (r *Reader) ReadFinite(s *torch.Scope, name string, dt torch.DType, dev torch.Device) *torch.Tensor {
	t := r.Read(s, name, dt, dev)
	if s.Err() == nil {
		if ok, err := s.AllFinite(t); err != nil {
			s.Fail(err)
		} else if !ok {
			s.Fail(fmt.Errorf("tensor %q holds NaN or Inf values", name))
		}
	}
	return t
}

// Release drops the reader's buffer.
func (r *Reader) Release() { r.buf = nil }
