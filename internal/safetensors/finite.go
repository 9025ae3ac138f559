package safetensors

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ErrNonFinite: a floating-point tensor holds NaN or ±Inf.
var ErrNonFinite = inputerr.New("non-finite value (NaN or Inf)")

// finiteChunk is how many bytes CheckFinite reads at a time per worker.
const finiteChunk = 4 << 20

// CheckFinite reads every floating-point tensor of c (F16, BF16, F32, F64)
// and fails with ErrNonFinite, naming the file, the tensor and the first bad
// element, if one holds NaN or ±Inf. It streams: each of workers goroutines
// (0: one per CPU, at most 8) holds a 4 MiB buffer, whatever the tensor
// sizes. Other dtypes are skipped.
func (c *Checkpoint) CheckFinite(workers int) error { return c.CheckFiniteWhere(workers, nil) }

// CheckFiniteWhere is CheckFinite on the tensors keep accepts (nil: all).
func (c *Checkpoint) CheckFiniteWhere(workers int, keep func(name string) bool) error {
	if workers <= 0 {
		workers = min(runtime.NumCPU(), 8)
	}
	type job struct {
		f  *File
		in TensorInfo
	}
	jobs := make(chan job)
	errs := make(chan error, workers)
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, finiteChunk)
			for j := range jobs {
				if err := checkTensorFinite(j.f, j.in, buf); err != nil {
					errs <- err
					once.Do(func() { close(stop) })
					return
				}
			}
		}()
	}
feed:
	for _, f := range c.files {
		for _, in := range f.Tensors() {
			switch in.DType {
			case F16, BF16, F32, F64:
			default:
				continue
			}
			if keep != nil && !keep(in.Name) {
				continue
			}
			select {
			case jobs <- job{f, in}:
			case <-stop:
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// checkTensorFinite scans one tensor in chunks of buf.
func checkTensorFinite(f *File, in TensorInfo, buf []byte) error {
	sec, err := f.Section(in.Name)
	if err != nil {
		return err
	}
	es := int64(in.DType.Size())
	buf = buf[:int64(len(buf))/es*es]
	var done int64
	for done < in.Size {
		n := min(int64(len(buf)), in.Size-done)
		if _, err := sec.ReadAt(buf[:n], done); err != nil && err != io.EOF {
			return tensorErr(f.path, in.Name, err)
		}
		if i := firstNonFinite(in.DType, buf[:n]); i >= 0 {
			idx := done/es + int64(i)
			return tensorErr(f.path, in.Name, fmt.Errorf("%w at element %d (a frozen weight must be finite)", ErrNonFinite, idx))
		}
		done += n
	}
	return nil
}

// firstNonFinite is the index of the first NaN/Inf element of b, or -1: an
// all-ones exponent, read from the raw bits.
func firstNonFinite(d DType, b []byte) int {
	le := binary.LittleEndian
	switch d {
	case F16:
		for i := 0; i+2 <= len(b); i += 2 {
			if le.Uint16(b[i:])&0x7c00 == 0x7c00 {
				return i / 2
			}
		}
	case BF16:
		for i := 0; i+2 <= len(b); i += 2 {
			if le.Uint16(b[i:])&0x7f80 == 0x7f80 {
				return i / 2
			}
		}
	case F32:
		for i := 0; i+4 <= len(b); i += 4 {
			if le.Uint32(b[i:])&0x7f800000 == 0x7f800000 {
				return i / 4
			}
		}
	case F64:
		for i := 0; i+8 <= len(b); i += 8 {
			if v := math.Float64frombits(le.Uint64(b[i:])); math.IsNaN(v) || math.IsInf(v, 0) {
				return i / 8
			}
		}
	}
	return -1
}
