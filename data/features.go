package data

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"

	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/fsutil"
)

// CheckShape reports whether shape fits in: [Tokens, Dim], or [Dim] when the
// input has a single token.
func CheckShape(in Input, shape []int) error {
	if slices.Equal(shape, []int{in.Tokens, in.Dim}) || (in.Tokens == 1 && slices.Equal(shape, []int{in.Dim})) {
		return nil
	}
	want := fmt.Sprintf("[%d %d]", in.Tokens, in.Dim)
	if in.Tokens == 1 {
		want += fmt.Sprintf(" or [%d]", in.Dim)
	}
	return fmt.Errorf("%w: input %q: shape %v, want %s", ErrShape, in.Name, shape, want)
}

// CheckFinite fails with ErrNonFinite naming the first NaN or Inf in v.
func CheckFinite(v []float32) error {
	for i, x := range v {
		if x-x != 0 { // NaN or ±Inf
			return fmt.Errorf("%w: %v at element %d", ErrNonFinite, x, i)
		}
	}
	return nil
}

// checkHeader reads only the header of path and checks dtype and shape.
func checkHeader(in Input, path string) error {
	h, err := npy.ReadFileHeader(path)
	if err != nil {
		return fileErr(err)
	}
	return CheckShape(in, h.Shape)
}

// readFeature reads the .npy file at path into dst (which has in.Tokens*in.Dim
// values), checking dtype, shape and finiteness. buf is a reusable read buffer.
func readFeature(in Input, path string, dst []float32, buf *[]byte) error {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return fileErr(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := int(st.Size())
	// A valid file is a header (< 64 KiB in practice) plus at most 4 bytes per
	// value; refuse to allocate for anything larger.
	if limit := 1<<16 + 4*in.Tokens*in.Dim; size > limit {
		return fmt.Errorf("%w: %d bytes, more than a %s array of input %q can take", ErrShape, size, npy.ShapeString([]int{in.Tokens, in.Dim}), in.Name)
	}
	if cap(*buf) < size {
		*buf = make([]byte, size)
	}
	b := (*buf)[:size]
	if _, err := io.ReadFull(f, b); err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	h, err := npy.ParseHeader(b)
	if err != nil {
		return err
	}
	if err := CheckShape(in, h.Shape); err != nil {
		return err
	}
	if _, err := npy.DecodeInto(dst, b); err != nil {
		return err
	}
	return CheckFinite(dst)
}

func fileErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %v", ErrMissingFile, err)
	}
	return err
}
