package safetensors

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPlanShards(t *testing.T) {
	spec := func(name string, n int64) TensorSpec { return TensorSpec{Name: name, DType: U8, Shape: []int64{n}} }
	tests := []struct {
		name  string
		specs []TensorSpec
		max   int64
		want  [][]string
	}{
		{"none", nil, 10, [][]string{nil}},
		{"fits", []TensorSpec{spec("a", 4), spec("b", 6)}, 10, [][]string{{"a", "b"}}},
		{"split", []TensorSpec{spec("a", 4), spec("b", 7), spec("c", 3)}, 10, [][]string{{"a"}, {"b", "c"}}},
		{"oversized alone", []TensorSpec{spec("a", 2), spec("big", 25), spec("c", 3)}, 10, [][]string{{"a"}, {"big"}, {"c"}}},
		{"oversized first", []TensorSpec{spec("big", 25), spec("c", 3)}, 10, [][]string{{"big"}, {"c"}}},
		{"zero size stays", []TensorSpec{spec("a", 10), spec("z", 0), spec("b", 1)}, 10, [][]string{{"a", "z"}, {"b"}}},
		{"one per shard", []TensorSpec{spec("a", 1), spec("b", 1), spec("c", 1)}, 1, [][]string{{"a"}, {"b"}, {"c"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := PlanShards(tt.specs, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, group := range plan {
				var names []string
				for _, s := range group {
					names = append(names, s.Name)
				}
				got = append(got, names)
			}
			if !slices.EqualFunc(got, tt.want, func(a, b []string) bool { return slices.Equal(a, b) }) {
				t.Errorf("plan %q, want %q", got, tt.want)
			}
		})
	}
	_, err := PlanShards([]TensorSpec{{Name: "a", DType: "X"}}, 10)
	wantErr(t, err, ErrDtype)
}

// shardTensors returns n F32 tensors of 4 floats (16 bytes) each.
func shardTensors(n int) []Tensor {
	var ts []Tensor
	for i := range n {
		ts = append(ts, Tensor{
			Name:  "layers." + string(rune('a'+i)) + ".weight",
			DType: F32, Shape: []int64{2, 2},
			Data: pattern(16, byte(i)),
		})
	}
	return ts
}

func TestWriteShardedRoundTrip(t *testing.T) {
	dir := t.TempDir()
	tensors := shardTensors(5)
	tensors = append(tensors, Tensor{Name: "ids", DType: I64, Shape: []int64{1}, Data: Int64sToBytes([]int64{42})})
	opts := ShardOptions{MaxShardSize: 40, Metadata: map[string]string{"format": "pt"}}
	if err := WriteSharded(dir, tensors, opts); err != nil {
		t.Fatal(err)
	}
	// I64 sorts first: [ids(8) a(16) b(16)] = 40, [c d] = 32, [e] = 16.
	want := []string{
		"model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
		"model-00003-of-00003.safetensors", "model.safetensors.index.json",
	}
	if names := dirNames(t, dir); !slices.Equal(names, want) {
		t.Fatalf("directory holds %q, want %q", names, want)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "model.safetensors.index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.Metadata["total_size"] != 5*16+8 {
		t.Errorf("total_size %d", idx.Metadata["total_size"])
	}
	if idx.WeightMap["ids"] != want[0] || idx.WeightMap["layers.c.weight"] != want[1] || idx.WeightMap["layers.e.weight"] != want[2] {
		t.Errorf("weight_map %v", idx.WeightMap)
	}

	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != len(tensors) || c.TotalSize() != 88 || len(c.Files()) != 3 {
		t.Errorf("Len %d TotalSize %d files %d", c.Len(), c.TotalSize(), len(c.Files()))
	}
	for _, tn := range tensors {
		got, err := c.Read(tn.Name)
		if err != nil || !bytes.Equal(got, tn.Data) {
			t.Errorf("%s: % x, %v", tn.Name, got, err)
		}
		info, _ := c.Info(tn.Name)
		if filepath.Base(info.Path) != idx.WeightMap[tn.Name] {
			t.Errorf("%s: Info.Path %s, index says %s", tn.Name, info.Path, idx.WeightMap[tn.Name])
		}
	}
	for _, f := range c.Files() {
		if f.Metadata()["format"] != "pt" {
			t.Errorf("%s: metadata %v", f.Path(), f.Metadata())
		}
	}
}

func TestWriteShardedSingleFile(t *testing.T) {
	dir := t.TempDir()
	// A stale index from an earlier sharded write is removed.
	writeBytes(t, dir, "model.safetensors.index.json", []byte(`{"weight_map":{"x":"gone.safetensors"}}`))
	if err := WriteSharded(dir, shardTensors(2), ShardOptions{}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"model.safetensors"}) {
		t.Fatalf("directory holds %q", names)
	}
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// And the other way round: a sharded write removes model.safetensors,
	// which OpenDir would otherwise prefer.
	if err := WriteSharded(dir, shardTensors(3), ShardOptions{MaxShardSize: 16}); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); slices.Contains(names, "model.safetensors") || len(names) != 4 {
		t.Fatalf("directory holds %q", names)
	}
	c, err = OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Len() != 3 {
		t.Errorf("Len %d", c.Len())
	}
}

func TestShardedWriterStreams(t *testing.T) {
	dir := t.TempDir()
	tensors := shardTensors(4)
	specs := make([]TensorSpec, len(tensors))
	var all []byte
	for i, tn := range tensors {
		specs[i] = tn.Spec()
		all = append(all, tn.Data...)
	}
	w, err := CreateSharded(dir, specs, ShardOptions{MaxShardSize: 32, Prefix: "adapter"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	wantFiles := []string{"adapter-00001-of-00002.safetensors", "adapter-00002-of-00002.safetensors", "adapter.safetensors.index.json"}
	if !slices.Equal(w.Files(), wantFiles) {
		t.Errorf("Files %q", w.Files())
	}
	// Chunks of 5 bytes cross tensor and shard boundaries.
	for off := 0; off < len(all); off += 5 {
		if _, err := w.Write(all[off:min(off+5, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, wantFiles[0])); !os.IsNotExist(err) {
		t.Errorf("shard in place before Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); !slices.Equal(names, wantFiles) {
		t.Fatalf("directory holds %q", names)
	}
	c, err := OpenIndex(filepath.Join(dir, wantFiles[2]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tn := range tensors {
		if got, err := c.Read(tn.Name); err != nil || !bytes.Equal(got, tn.Data) {
			t.Errorf("%s: % x, %v", tn.Name, got, err)
		}
	}
}

func TestShardedWriterFailuresLeaveNothing(t *testing.T) {
	tensors := shardTensors(4)
	specs := make([]TensorSpec, len(tensors))
	for i, tn := range tensors {
		specs[i] = tn.Spec()
	}
	tests := []struct {
		name string
		run  func(w *ShardedWriter) error
		want error
	}{
		{"incomplete", func(w *ShardedWriter) error {
			w.WriteTensor(tensors[0].Name, tensors[0].Data)
			w.WriteTensor(tensors[1].Name, tensors[1].Data)
			w.WriteTensor(tensors[2].Name, tensors[2].Data)
			return w.Close()
		}, ErrSize},
		{"too much", func(w *ShardedWriter) error {
			_, err := w.Write(make([]byte, 65))
			return err
		}, ErrSize},
		{"skips a shard", func(w *ShardedWriter) error {
			return w.WriteTensor(tensors[2].Name, tensors[2].Data)
		}, ErrOrder},
		{"back to a finished shard", func(w *ShardedWriter) error {
			for _, tn := range tensors[:3] {
				if err := w.WriteTensor(tn.Name, tn.Data); err != nil {
					return err
				}
			}
			return w.WriteTensor(tensors[0].Name, tensors[0].Data)
		}, ErrOrder},
		{"wrong size", func(w *ShardedWriter) error {
			return w.WriteTensor(tensors[0].Name, tensors[0].Data[:3])
		}, ErrSize},
		{"unknown", func(w *ShardedWriter) error { return w.WriteTensor("nope", nil) }, ErrNotFound},
		{"aborted", func(w *ShardedWriter) error {
			w.WriteTensor(tensors[0].Name, tensors[0].Data)
			w.Abort()
			return w.Close()
		}, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := CreateSharded(dir, specs, ShardOptions{MaxShardSize: 32})
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, tt.run(w), tt.want)
			w.Abort()
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("left behind: %q", names)
			}
		})
	}
	// Bad specs and prefixes fail at creation.
	dir := t.TempDir()
	_, err := CreateSharded(dir, append(specs, specs[0]), ShardOptions{})
	wantErr(t, err, ErrDuplicate, dir)
	_, err = CreateSharded(dir, specs, ShardOptions{Prefix: "../x"})
	wantErr(t, err, ErrUnsafePath)
	if names := dirNames(t, dir); len(names) != 0 {
		t.Errorf("left behind: %q", names)
	}
}
