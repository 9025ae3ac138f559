package fsutil

import (
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/mose-llm/mose/internal/inputerr"
)

// ErrNotRegular: a path the user gave names a FIFO, a device, a socket or a
// directory where a regular file is needed. Opening a FIFO for reading
// blocks until a writer appears, so such paths are refused before open.
var ErrNotRegular = inputerr.New("not a regular file")

// kind names a non-regular file mode for messages.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeIrregular != 0:
		return "an irregular file"
	default:
		return "not a regular file"
	}
}

func notRegular(op, path string, m fs.FileMode) error {
	return &fs.PathError{Op: op, Path: path, Err: fmt.Errorf("%w: it is %s", ErrNotRegular, kind(m))}
}

// CheckRegular stats path (following symbolic links) and refuses anything
// but a regular file, without opening it.
func CheckRegular(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return notRegular("open", path, st.Mode())
	}
	return nil
}

// OpenRegular opens path for reading only if it is a regular file: it stats
// first, then opens without blocking (a FIFO swapped in after the stat is
// still refused, by the check on the open file) and checks again.
func OpenRegular(path string) (*os.File, error) {
	if err := CheckRegular(path); err != nil {
		return nil, err
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular("open", path, st.Mode())
	}
	return f, nil
}

// ReadRegular reads the whole regular file at path (see OpenRegular).
func ReadRegular(path string) ([]byte, error) {
	return ReadRegularLimit(path, -1)
}

// ReadRegularLimit reads the regular file at path, refusing one larger than
// limit bytes (limit < 0: no limit) with an error naming the path.
func ReadRegularLimit(path string, limit int64) ([]byte, error) {
	f, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit+1)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if limit >= 0 && int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: path, Err: inputerr.Mark(fmt.Errorf("larger than %d bytes", limit))}
	}
	return b, nil
}

// MaxConfigSize bounds the small JSON and YAML files mose reads whole
// (config.json, recipes, tokenizer_config.json, trainer_state.json): a
// multi-gigabyte file given by mistake is refused, not read into memory.
const MaxConfigSize = 64 << 20
