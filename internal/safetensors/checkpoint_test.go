package safetensors

import (
	"bytes"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"
)

// shardDir writes shards s1 (tensors a, b) and s2 (tensor c) into a new
// directory, plus the given index text, and returns the directory.
func shardDir(t *testing.T, index string) string {
	t.Helper()
	dir := t.TempDir()
	u8 := func(name string, v byte) Tensor {
		return Tensor{Name: name, DType: U8, Shape: []int64{1}, Data: []byte{v}}
	}
	if err := WriteFile(filepath.Join(dir, "s1.safetensors"), []Tensor{u8("a", 1), u8("b", 2)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "s2.safetensors"), []Tensor{u8("c", 3)}, nil); err != nil {
		t.Fatal(err)
	}
	writeBytes(t, dir, "model.safetensors.index.json", []byte(index))
	return dir
}

const goodIndex = `{"metadata": {"total_size": 3}, "weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}}`

func TestOpenSharded(t *testing.T) {
	dir := shardDir(t, goodIndex)
	index := filepath.Join(dir, "model.safetensors.index.json")
	for _, open := range []struct {
		name string
		fn   func() (*Checkpoint, error)
	}{
		{"OpenDir", func() (*Checkpoint, error) { return OpenDir(dir) }},
		{"OpenIndex", func() (*Checkpoint, error) { return OpenIndex(index) }},
		{"OpenCheckpoint dir", func() (*Checkpoint, error) { return OpenCheckpoint(dir) }},
		{"OpenCheckpoint index", func() (*Checkpoint, error) { return OpenCheckpoint(index) }},
	} {
		t.Run(open.name, func(t *testing.T) {
			c, err := open.fn()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !slices.Equal(c.Names(), []string{"a", "b", "c"}) {
				t.Errorf("Names %q", c.Names())
			}
			for name, v := range map[string]byte{"a": 1, "b": 2, "c": 3} {
				got, err := c.Read(name)
				if err != nil || !bytes.Equal(got, []byte{v}) {
					t.Errorf("%s: % x, %v", name, got, err)
				}
				buf := []byte{0}
				if err := c.ReadInto(name, buf); err != nil || buf[0] != v {
					t.Errorf("%s: ReadInto %v", name, err)
				}
				sec, err := c.Section(name)
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(sec); !bytes.Equal(b, []byte{v}) {
					t.Errorf("%s: section % x", name, b)
				}
			}
			info, err := c.Info("c")
			if err != nil || filepath.Base(info.Path) != "s2.safetensors" {
				t.Errorf("Info(c) = %+v, %v", info, err)
			}
			if len(c.Tensors()) != 3 || c.TotalSize() != 3 {
				t.Errorf("Tensors %d TotalSize %d", len(c.Tensors()), c.TotalSize())
			}
			_, err = c.Read("zz")
			wantErr(t, err, ErrNotFound, `"zz"`)
			_, err = c.Info("zz")
			wantErr(t, err, ErrNotFound)
			wantErr(t, c.ReadInto("zz", nil), ErrNotFound)
			_, err = c.Section("zz")
			wantErr(t, err, ErrNotFound)
		})
	}
}

func TestOpenSingle(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	if err := WriteFile(path, shardTensors(2), nil); err != nil {
		t.Fatal(err)
	}
	// model.safetensors wins over an index, as in transformers.
	writeBytes(t, dir, "model.safetensors.index.json", []byte(`{"weight_map":{"x":"missing.safetensors"}}`))
	for _, p := range []string{dir, path} {
		c, err := OpenCheckpoint(p)
		if err != nil {
			t.Fatal(err)
		}
		if c.Len() != 2 || len(c.Files()) != 1 || c.Path() != p {
			t.Errorf("%s: Len %d files %d path %s", p, c.Len(), len(c.Files()), c.Path())
		}
		c.Close()
	}
}

func TestOpenCheckpointErrors(t *testing.T) {
	tests := []struct {
		name     string
		index    string
		want     error
		mentions []string
	}{
		{"missing shard", `{"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors", "d": "s3.safetensors"}}`,
			ErrMissingShard, []string{"s3.safetensors", "index.json"}},
		{"tensor absent from its shard", `{"weight_map": {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors", "x": "s2.safetensors"}}`,
			ErrInvalidIndex, []string{`"x"`, "s2.safetensors"}},
		{"tensor in another shard", `{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors", "c": "s2.safetensors"}}`,
			ErrInvalidIndex, []string{`"b"`, "s2.safetensors", "s1.safetensors"}},
		{"escaping shard", `{"weight_map": {"a": "../s1.safetensors"}}`, ErrUnsafePath, []string{"../s1.safetensors"}},
		{"escaping shard, nested", `{"weight_map": {"a": "sub/../../s1.safetensors"}}`, ErrUnsafePath, nil},
		{"absolute shard", `{"weight_map": {"a": "/etc/passwd"}}`, ErrUnsafePath, []string{"/etc/passwd"}},
		{"empty shard name", `{"weight_map": {"a": ""}}`, ErrUnsafePath, nil},
		{"duplicate weight_map key", `{"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}}`, ErrDuplicate, []string{`"a"`}},
		{"duplicate top-level key", `{"weight_map": {"a": "s1.safetensors"}, "weight_map": {}}`, ErrDuplicate, nil},
		{"bad json", `{"weight_map": {"a": "s1.safetensors",}}`, ErrInvalidIndex, nil},
		{"trailing data", `{"weight_map": {"a": "s1.safetensors"}} {}`, ErrInvalidIndex, nil},
		{"no weight_map", `{"metadata": {}}`, ErrInvalidIndex, []string{"weight_map"}},
		{"empty weight_map", `{"weight_map": {}}`, ErrInvalidIndex, []string{"empty"}},
		{"weight_map not object", `{"weight_map": ["s1.safetensors"]}`, ErrInvalidIndex, nil},
		{"shard not string", `{"weight_map": {"a": 1}}`, ErrInvalidIndex, []string{`"a"`}},
		{"not an object", `[]`, ErrInvalidIndex, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := shardDir(t, tt.index)
			c, err := OpenDir(dir)
			if err == nil {
				c.Close()
			}
			wantErr(t, err, tt.want, tt.mentions...)
		})
	}
}

func TestOpenCheckpointShardProblems(t *testing.T) {
	// A tensor held by two shards, even if the index names only one.
	dir := shardDir(t, goodIndex)
	if err := WriteFile(filepath.Join(dir, "s2.safetensors"), []Tensor{
		{Name: "c", DType: U8, Shape: []int64{1}, Data: []byte{3}},
		{Name: "a", DType: U8, Shape: []int64{1}, Data: []byte{9}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	_, err := OpenDir(dir)
	wantErr(t, err, ErrDuplicate, `"a"`, "s1.safetensors", "s2.safetensors")

	// A corrupt shard is reported with the shard's own path.
	dir = shardDir(t, goodIndex)
	shard := writeBytes(t, dir, "s2.safetensors", rawFile(`{"c":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, nil))
	_, err = OpenDir(dir)
	wantErr(t, err, ErrTruncated, shard)

	// Tensors a shard holds but the index omits are still in the view.
	dir = shardDir(t, `{"weight_map": {"a": "s1.safetensors", "c": "s2.safetensors"}}`)
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !slices.Equal(c.Names(), []string{"a", "b", "c"}) {
		t.Errorf("Names %q", c.Names())
	}

	// Nothing to open.
	_, err = OpenDir(t.TempDir())
	wantErr(t, err, fs.ErrNotExist, "model.safetensors")
	_, err = OpenCheckpoint(filepath.Join(dir, "nope"))
	wantErr(t, err, fs.ErrNotExist)
	_, err = OpenIndex(filepath.Join(dir, "nope.json"))
	wantErr(t, err, fs.ErrNotExist)
}

func TestOpenIndexShardInSubdirectory(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "part", "x.safetensors"), nil, nil); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	writeBytes(t, dir, "part/x.safetensors", rawFile(`{"t":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}`, []byte{1, 2}))
	idx := writeBytes(t, dir, "m.index.json", []byte(`{"weight_map":{"t":"part/x.safetensors"}}`))
	c, err := OpenIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := c.Read("t"); err != nil || !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("t = % x, %v", got, err)
	}
}

// OpenDirWith adds the extra files that exist to the directory's checkpoint (a
// merged export's projectors beside its shards), and refuses a tensor in two files.
func TestOpenDirWith(t *testing.T) {
	u8 := func(name string, v byte) Tensor {
		return Tensor{Name: name, DType: U8, Shape: []int64{1}, Data: []byte{v}}
	}
	cases := []struct {
		name  string
		extra []Tensor // written as extra.safetensors; nil: no such file
		names []string
		want  error
	}{
		{"no extra file", nil, []string{"a", "b", "c"}, nil},
		{"extra file", []Tensor{u8("projectors.x.weight", 4)}, []string{"a", "b", "c", "projectors.x.weight"}, nil},
		{"tensor in both", []Tensor{u8("c", 5)}, nil, ErrDuplicate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := shardDir(t, goodIndex)
			if c.extra != nil {
				if err := WriteFile(filepath.Join(dir, "extra.safetensors"), c.extra, nil); err != nil {
					t.Fatal(err)
				}
			}
			ck, err := OpenDirWith(dir, "extra.safetensors", "absent.safetensors")
			wantErr(t, err, c.want)
			if err != nil {
				return
			}
			defer ck.Close()
			if !slices.Equal(ck.Names(), c.names) {
				t.Errorf("names %v, want %v", ck.Names(), c.names)
			}
			if c.extra != nil {
				if b, err := ck.Read(c.extra[0].Name); err != nil || !bytes.Equal(b, c.extra[0].Data) {
					t.Errorf("read %s: %v %v", c.extra[0].Name, b, err)
				}
			}
		})
	}
}
