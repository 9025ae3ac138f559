package cas

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/safetensors"
)

// Parts are length-prefixed: moving a byte from one part to the next, or
// relabelling a part, changes the key.
func TestHasherUnambiguous(t *testing.T) {
	key := func(parts ...[2]string) string {
		h := NewHasher("k")
		for _, p := range parts {
			h.String(p[0], p[1])
		}
		return h.Sum()
	}
	base := key([2]string{"a", "xy"}, [2]string{"b", "z"})
	for name, other := range map[string]string{
		"byte moved":  key([2]string{"a", "x"}, [2]string{"b", "yz"}),
		"relabelled":  key([2]string{"a", "xy"}, [2]string{"c", "z"}),
		"part joined": key([2]string{"a", "xyz"}),
		"other kind":  func() string { h := NewHasher("j"); h.String("a", "xy"); h.String("b", "z"); return h.Sum() }(),
	} {
		if other == base {
			t.Errorf("%s: same key", name)
		}
	}
}

// Write then Read round-trips; a damaged entry is ErrCorrupt; a missing one
// is not-exist (a miss, not a corruption).
func TestWriteRead(t *testing.T) {
	dir := t.TempDir()
	path := Store{Dir: filepath.Join(dir, "sub")}.Path("abc")
	ts := []safetensors.Tensor{{Name: "x", DType: safetensors.F32, Shape: []int64{2}, Data: safetensors.Float32sToBytes([]float32{1, 2})}}
	if err := Write(path, ts, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	got, meta, err := Read(path, 1<<20)
	if err != nil || len(got) != 1 || meta["k"] != "v" || meta[MetaChecksum] != Checksum(ts) {
		t.Fatalf("read back: %v %v %v", got, meta, err)
	}
	good, _ := os.ReadFile(path)
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"flipped payload byte", append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^1)},
		{"truncated", good[:len(good)-3]},
		{"empty", nil},
	} {
		if err := os.WriteFile(path, c.data, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := Read(path, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", c.name, err)
		}
	}
	noSum := filepath.Join(dir, "nosum.safetensors")
	if err := safetensors.WriteFile(noSum, ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(noSum, 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no checksum: %v, want ErrCorrupt", err)
	}
	if _, _, err := Read(filepath.Join(dir, "absent.safetensors"), 1<<20); !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrCorrupt) {
		t.Errorf("missing: %v, want not-exist", err)
	}
	if err := Write(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(path, 4); !errors.Is(err, ErrCorrupt) {
		t.Errorf("beyond the bound: %v, want ErrCorrupt", err)
	}
}
