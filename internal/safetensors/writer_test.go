package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var streamSpecs = []TensorSpec{
	{Name: "emb", DType: F32, Shape: []int64{3, 2}},
	{Name: "empty", DType: F16, Shape: []int64{0}},
	{Name: "ids", DType: I64, Shape: []int64{2}},
	{Name: "flag", DType: BOOL, Shape: []int64{}},
}

func TestWriterStreamsInChunks(t *testing.T) {
	for _, chunk := range []int{1, 3, 7, 100} {
		dir := t.TempDir()
		path := filepath.Join(dir, "s.safetensors")
		w, err := Create(path, streamSpecs, map[string]string{"format": "pt"})
		if err != nil {
			t.Fatal(err)
		}
		data := pattern(24+16+1, 5)
		for off := 0; off < len(data); off += chunk {
			if _, err := w.Write(data[off:min(off+chunk, len(data))]); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("destination exists before Close: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Errorf("Abort after Close: %v", err)
		}
		if names := dirNames(t, dir); !slices.Equal(names, []string{"s.safetensors"}) {
			t.Errorf("directory holds %q", names)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string][]byte{"emb": data[:24], "empty": {}, "ids": data[24:40], "flag": data[40:]}
		for name, b := range want {
			got, err := f.Read(name)
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("chunk %d: %s = % x, %v", chunk, name, got, err)
			}
		}
		// Declared order is data order.
		var order []string
		for _, ti := range f.Tensors() {
			order = append(order, ti.Name)
		}
		if !slices.Equal(order, []string{"emb", "empty", "ids", "flag"}) {
			t.Errorf("data order %q", order)
		}
		f.Close()
	}
}

func TestWriterWriteTensor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "t.safetensors")
	w, err := Create(path, streamSpecs, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	steps := []struct {
		name string
		data []byte
	}{
		{"emb", pattern(24, 1)},
		{"ids", pattern(16, 2)}, // "empty" needs no call
		{"empty", nil},          // but may have one, even late
		{"flag", []byte{1}},
	}
	for _, s := range steps {
		if err := w.WriteTensor(s.name, s.data); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, _ := f.Read("ids"); !bytes.Equal(got, pattern(16, 2)) {
		t.Errorf("ids = % x", got)
	}
	if f.Metadata() != nil {
		t.Errorf("metadata %v, want none", f.Metadata())
	}
}

// TestWriterFailuresLeaveNothing: every failure is reported with its
// sentinel, and neither the destination nor a temporary file is left.
func TestWriterFailuresLeaveNothing(t *testing.T) {
	tests := []struct {
		name  string
		run   func(w *Writer) error // returns the first error seen
		want  error
		where string
	}{
		{"too many bytes", func(w *Writer) error {
			if _, err := w.Write(make([]byte, 42)); err != nil {
				return err
			}
			return w.Close()
		}, ErrSize, ""},
		{"too many bytes over several writes", func(w *Writer) error {
			if _, err := w.Write(make([]byte, 40)); err != nil {
				return err
			}
			if _, err := w.Write(make([]byte, 2)); err != nil {
				return err
			}
			return w.Close()
		}, ErrSize, ""},
		{"too few bytes", func(w *Writer) error {
			if _, err := w.Write(make([]byte, 30)); err != nil {
				return err
			}
			return w.Close()
		}, ErrSize, `"ids"`},
		{"nothing written", func(w *Writer) error { return w.Close() }, ErrSize, `"emb"`},
		{"tensor too short", func(w *Writer) error { return w.WriteTensor("emb", make([]byte, 23)) }, ErrSize, `"emb"`},
		{"tensor too long", func(w *Writer) error { return w.WriteTensor("flag", make([]byte, 2)) }, ErrSize, `"flag"`},
		{"out of order", func(w *Writer) error { return w.WriteTensor("ids", make([]byte, 16)) }, ErrOrder, `"emb"`},
		{"written twice", func(w *Writer) error {
			if err := w.WriteTensor("emb", make([]byte, 24)); err != nil {
				return err
			}
			return w.WriteTensor("emb", make([]byte, 24))
		}, ErrOrder, `"ids"`},
		{"undeclared", func(w *Writer) error { return w.WriteTensor("other", nil) }, ErrNotFound, `"other"`},
		{"poisoned then closed", func(w *Writer) error {
			w.WriteTensor("ids", make([]byte, 16))
			w.WriteTensor("emb", make([]byte, 24))
			return w.Close()
		}, ErrOrder, ""},
		{"aborted", func(w *Writer) error {
			w.Write(make([]byte, 41))
			w.Abort()
			return w.Close()
		}, ErrClosed, ""},
		{"write after abort", func(w *Writer) error {
			w.Abort()
			_, err := w.Write([]byte{1})
			return err
		}, ErrClosed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.safetensors")
			w, err := Create(path, streamSpecs, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = tt.run(w)
			wantErr(t, err, tt.want, path, tt.where)
			w.Abort()
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("left behind: %q", names)
			}
		})
	}
}

func TestWriterKeepsOldFileUntilClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	old := []Tensor{{Name: "old", DType: U8, Shape: []int64{1}, Data: []byte{7}}}
	if err := WriteFile(path, old, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	// A failed rewrite leaves the old file untouched.
	w, err := Create(path, []TensorSpec{{Name: "new", DType: U8, Shape: []int64{2}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte{1})
	wantErr(t, w.Close(), ErrSize)
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("failed write changed the existing file")
	}
	// A successful one replaces it.
	if err := WriteFile(path, []Tensor{{Name: "new", DType: U8, Shape: []int64{2}, Data: []byte{1, 2}}}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !slices.Equal(f.Names(), []string{"new"}) {
		t.Errorf("names %q", f.Names())
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("directory holds %q", names)
	}
}

func TestCreateRejectsBadSpecs(t *testing.T) {
	tests := []struct {
		name  string
		specs []TensorSpec
		md    map[string]string
		want  error
	}{
		{"duplicate", []TensorSpec{{Name: "a", DType: U8}, {Name: "a", DType: U8}}, nil, ErrDuplicate},
		{"empty name", []TensorSpec{{Name: "", DType: U8}}, nil, ErrInvalidHeader},
		{"reserved name", []TensorSpec{{Name: "__metadata__", DType: U8}}, nil, ErrInvalidHeader},
		{"invalid utf8 name", []TensorSpec{{Name: "\xff", DType: U8}}, nil, ErrInvalidHeader},
		{"unknown dtype", []TensorSpec{{Name: "a", DType: "F12"}}, nil, ErrDtype},
		{"zero dtype", []TensorSpec{{Name: "a"}}, nil, ErrDtype},
		{"negative dim", []TensorSpec{{Name: "a", DType: F32, Shape: []int64{2, -1}}}, nil, ErrShape},
		{"overflow", []TensorSpec{{Name: "a", DType: F32, Shape: []int64{1 << 62}}}, nil, ErrShape},
		{"total overflow", []TensorSpec{{Name: "a", DType: U8, Shape: []int64{1 << 62}}, {Name: "b", DType: U8, Shape: []int64{1 << 62}}}, nil, ErrShape},
		{"invalid utf8 metadata", []TensorSpec{{Name: "a", DType: U8}}, map[string]string{"k": "\xfe"}, ErrInvalidHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.safetensors")
			_, err := Create(path, tt.specs, tt.md)
			wantErr(t, err, tt.want, path)
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("left behind: %q", names)
			}
		})
	}
	// WriteFile checks data lengths.
	dir := t.TempDir()
	path := filepath.Join(dir, "w.safetensors")
	err := WriteFile(path, []Tensor{{Name: "a", DType: F32, Shape: []int64{2}, Data: make([]byte, 7)}}, nil)
	wantErr(t, err, ErrSize, `"a"`)
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
	// Create in a missing directory fails cleanly.
	_, err = Create(filepath.Join(dir, "no", "x.safetensors"), nil, nil)
	if err == nil {
		t.Error("Create in a missing directory succeeded")
	}
}
