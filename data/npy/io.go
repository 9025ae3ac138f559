package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
)

// ReadFile reads and decodes a whole .npy file.
func ReadFile(path string) (*Array, error) {
	b, err := fsutil.ReadRegular(path)
	if err != nil {
		return nil, err
	}
	return Decode(b)
}

// Read decodes a .npy array from r. Memory grows with the bytes actually read,
// not with the size the header claims.
func Read(r io.Reader) (*Array, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return Decode(b)
}

// maxHeaderRead is how much of a file ReadFileHeader reads at most.
const maxHeaderRead = 1 << 16

// ReadFileHeader reads only the header of a .npy file and checks that the file
// size matches the shape it declares. It is cheap enough to check every file
// of a dataset up front.
func ReadFileHeader(path string) (Header, error) {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, err
	}
	buf := make([]byte, min(st.Size(), maxHeaderRead))
	if _, err := io.ReadFull(f, buf); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return Header{}, err
	}
	if err := checkDataSize(h, int(st.Size())); err != nil {
		return Header{}, err
	}
	return h, nil
}

// Write encodes a as a version 1.0 .npy file (version 2.0 if the header needs
// it). Float16 arrays are narrowed with round-to-nearest-even.
func Write(w io.Writer, a *Array) error {
	n := 1
	for _, d := range a.Shape {
		if d < 0 {
			return fmt.Errorf("%w: negative dimension in %v", ErrFormat, a.Shape)
		}
		n *= d
	}
	if n != len(a.Data) {
		return fmt.Errorf("%w: shape %v needs %d values, have %d", ErrFormat, a.Shape, n, len(a.Data))
	}
	if a.DType != Float32 && a.DType != Float16 {
		return fmt.Errorf("%w: %d", ErrDType, a.DType)
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", a.DType, ShapeString(a.Shape))
	// Pad with spaces and a newline so the data starts on a 64-byte boundary.
	var hdr bytes.Buffer
	hdr.Write(magic)
	pre := 10
	if len(dict)+1+pre > math.MaxUint16 {
		pre = 12
	}
	total := (pre + len(dict) + 1 + 63) / 64 * 64
	body := dict + string(bytes.Repeat([]byte{' '}, total-pre-len(dict)-1)) + "\n"
	if pre == 10 {
		hdr.Write([]byte{1, 0})
		_ = binary.Write(&hdr, binary.LittleEndian, uint16(len(body)))
	} else {
		hdr.Write([]byte{2, 0})
		_ = binary.Write(&hdr, binary.LittleEndian, uint32(len(body)))
	}
	hdr.WriteString(body)
	out := make([]byte, 0, hdr.Len()+n*a.DType.Size())
	out = append(out, hdr.Bytes()...)
	switch a.DType {
	case Float32:
		for _, v := range a.Data {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
		}
	case Float16:
		for _, v := range a.Data {
			out = binary.LittleEndian.AppendUint16(out, safetensors.Float32ToF16(v))
		}
	}
	_, err := w.Write(out)
	return err
}
