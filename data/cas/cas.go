// Package cas keeps mose's content-addressed cache files: safetensors files
// named by a key (a hex SHA-256 over everything that made their content),
// written atomically (temporary file, then rename: two processes writing the
// same key both leave a whole file) with a SHA-256 of their payload in the
// metadata, and verified on read. A file that fails verification is not
// used: the caller removes it (it is the cache's own) and recomputes it.
package cas

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/safetensors"
)

// MetaChecksum is the metadata key of an entry's payload checksum: the hex
// SHA-256 of its tensors (Checksum).
const MetaChecksum = "mose.sha256"

// ErrCorrupt: a cache entry that fails verification (truncated, a flipped
// byte, a wrong checksum, a shape or value its reader refuses).
var ErrCorrupt = errors.New("corrupt cache entry")

// Hasher builds a key: each part is written with its label and length, so
// that no two different sequences of parts hash alike.
type Hasher struct{ h hash.Hash }

// NewHasher starts a key for what (a kind name, also hashed).
func NewHasher(what string) *Hasher {
	h := &Hasher{h: sha256.New()}
	h.String("kind", what)
	return h
}

// Bytes adds a labelled byte string.
func (h *Hasher) Bytes(label string, b []byte) {
	h.head(label, int64(len(b)))
	h.h.Write(b)
}

// String adds a labelled string.
func (h *Hasher) String(label, s string) { h.Bytes(label, []byte(s)) }

func (h *Hasher) head(label string, n int64) {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], uint64(len(label)))
	h.h.Write(buf[:])
	h.h.Write([]byte(label))
	binary.LittleEndian.PutUint64(buf[:], uint64(n))
	h.h.Write(buf[:])
}

// File adds a file's bytes, streamed (a regular file only).
func (h *Hasher) File(label, path string) error {
	f, err := fsutil.OpenRegular(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h.head(label, st.Size())
	n, err := io.Copy(h.h, f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if n != st.Size() {
		return fmt.Errorf("%s: changed while it was read (%d bytes, then %d)", path, st.Size(), n)
	}
	return nil
}

// Sum is the key: hex SHA-256.
func (h *Hasher) Sum() string { return hex.EncodeToString(h.h.Sum(nil)) }

// HashFile is the hex SHA-256 of one file's bytes under label.
func HashFile(what, path string) (string, error) {
	h := NewHasher(what)
	if err := h.File("file", path); err != nil {
		return "", err
	}
	return h.Sum(), nil
}

// Store is a directory of entries <Dir>/<key>.safetensors.
type Store struct{ Dir string }

// Path is key's entry.
func (s Store) Path(key string) string { return filepath.Join(s.Dir, key+".safetensors") }

// Checksum is the hex SHA-256 of tensors in name order: each one's name,
// dtype, shape and bytes.
func Checksum(tensors []safetensors.Tensor) string {
	ts := slices.Clone(tensors)
	slices.SortFunc(ts, func(a, b safetensors.Tensor) int { return strings.Compare(a.Name, b.Name) })
	h := NewHasher("payload")
	for _, t := range ts {
		h.String("name", t.Name)
		h.String("dtype", string(t.DType))
		h.String("shape", fmt.Sprint(t.Shape))
		h.Bytes("data", t.Data)
	}
	return h.Sum()
}

// Write writes tensors to path atomically with meta and their checksum
// (MetaChecksum) in the metadata, creating the directory.
func Write(path string, tensors []safetensors.Tensor, meta map[string]string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	m := map[string]string{MetaChecksum: Checksum(tensors)}
	for k, v := range meta {
		m[k] = v
	}
	return safetensors.WriteFile(path, tensors, m)
}

// Read reads a whole entry and verifies its checksum: a file that cannot be
// read as safetensors (truncated, a damaged header), has no checksum or
// whose tensors do not match it is ErrCorrupt. It returns the tensors and
// the metadata. maxBytes bounds the payload read.
func Read(path string, maxBytes int64) ([]safetensors.Tensor, map[string]string, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, err
		}
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	defer f.Close()
	want := f.Metadata()[MetaChecksum]
	if want == "" {
		return nil, nil, fmt.Errorf("%w: %s: no %s in its metadata", ErrCorrupt, path, MetaChecksum)
	}
	var total int64
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		n, err := safetensors.ByteSize(info.DType, info.Shape)
		if err != nil || n > maxBytes-total {
			return nil, nil, fmt.Errorf("%w: %s: tensor %s %v beyond the bound of %d bytes", ErrCorrupt, path, info.Name, info.Shape, maxBytes)
		}
		total += n
		b, err := f.Read(info.Name)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	if got := Checksum(ts); got != want {
		return nil, nil, fmt.Errorf("%w: %s: payload SHA-256 %s, its metadata says %s", ErrCorrupt, path, got[:12], short(want))
	}
	return ts, f.Metadata(), nil
}

// Verify is Read without keeping the tensors.
func Verify(path string, maxBytes int64) error {
	_, _, err := Read(path, maxBytes)
	return err
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// DefaultDir is the default data cache: ${MOSE_CACHE:-$HOME/.cache/mose}/data.
func DefaultDir() (string, error) {
	cache := os.Getenv("MOSE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("data cache: no $MOSE_CACHE and no home directory (%w): set data.cache_dir", err)
		}
		cache = filepath.Join(home, ".cache", "mose")
	}
	return filepath.Join(cache, "data"), nil
}
