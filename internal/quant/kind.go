// Package quant keeps frozen weights quantized and dequantizes them for a
// forward: NF4 exactly as torchao's to_nf4 (block size 64, the NF4 code
// table, block scales double-quantized in groups of 256 around their mean as
// int8), and int8 per output channel exactly as torchao's
// Int8WeightOnlyConfig (symmetric, scale absmax/127.5, codes in [-128, 127]).
// Quantization runs libtorch ops in the order torchao runs them, so that the
// codes, scales and dequantized weights equal torchao's bit for bit on the CPU.
package quant

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is a quantization of the frozen linears.
type Kind string

// The kinds mose implements. None keeps weights in the run dtype.
const (
	None Kind = ""
	NF4  Kind = "nf4"
	Int8 Kind = "int8"
)

// Kinds are the recipe's spellings, in the order the docs list them.
var Kinds = []string{"none", "nf4", "int8"}

// NF4 layout constants (torchao's to_nf4 defaults).
const (
	BlockSize       = 64  // weights per absmax block
	ScalerBlockSize = 256 // block scales per double-quantization group
	// NF4Multiple is what a weight's element count must be a multiple of.
	NF4Multiple = BlockSize * ScalerBlockSize
)

// ErrKind is an unknown quantization name; ErrLayout a weight that does not
// fit a quantization's layout. Callers wrap them with the bad-input
// sentinel of their input.
var (
	ErrKind   = errors.New("unknown quantization")
	ErrLayout = errors.New("weight does not fit the quantization layout")
)

// ParseKind reads a recipe or flag value: "", "none", "nf4" or "int8".
func ParseKind(s string) (Kind, error) {
	switch strings.TrimSpace(s) {
	case "", "none":
		return None, nil
	case "nf4":
		return NF4, nil
	case "int8":
		return Int8, nil
	}
	return None, fmt.Errorf("%w %q (want one of %v)", ErrKind, s, Kinds)
}

// String is the recipe spelling ("none" for None).
func (k Kind) String() string {
	if k == None {
		return "none"
	}
	return string(k)
}

// CheckShape says whether a weight of this shape can be stored as k. NF4
// needs a 1-D or 2-D weight whose element count is a multiple of 64 × 256
// (torchao's to_nf4 refuses the others; mose does not pad). int8 needs a
// 2-D weight (one scale per output row).
func CheckShape(k Kind, name string, shape []int64) error {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	switch k {
	case None:
		return nil
	case NF4:
		if len(shape) < 1 || len(shape) > 2 || n%NF4Multiple != 0 {
			return fmt.Errorf("%w: %s %v has %d elements; nf4 (torchao's to_nf4 layout) needs a multiple of %d × %d = %d (blocks of %d, block scales in groups of %d)",
				ErrLayout, name, shape, n, BlockSize, ScalerBlockSize, NF4Multiple, BlockSize, ScalerBlockSize)
		}
	case Int8:
		if len(shape) != 2 || n == 0 {
			return fmt.Errorf("%w: %s %v: int8 needs a non-empty 2-D weight (one scale per output row)", ErrLayout, name, shape)
		}
	default:
		return fmt.Errorf("%w %q", ErrKind, string(k))
	}
	return nil
}

// StoredBytes is the memory a quantized weight of numel elements and out
// rows keeps, with dtypeSize the bytes of an element of the run dtype (the
// dtype of NF4's factors and mean). None keeps numel·dtypeSize.
func StoredBytes(k Kind, numel, out, dtypeSize int64) int64 {
	switch k {
	case NF4:
		blocks := numel / BlockSize
		groups := blocks / ScalerBlockSize
		// codes, int8 scalers, factors, mean, the 256×2 pair table
		return numel/2 + blocks + groups*dtypeSize + dtypeSize + 512*dtypeSize
	case Int8:
		return numel + out*4 // codes, float32 scales
	}
	return numel * dtypeSize
}
