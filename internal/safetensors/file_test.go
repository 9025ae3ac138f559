package safetensors

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

// allDTypes lists every supported dtype.
var allDTypes = []DType{BOOL, U8, I8, F8E4M3, F8E5M2, F8E8M0, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64, C64}

func TestRoundTripEveryDtype(t *testing.T) {
	dir := t.TempDir()
	shapes := [][]int64{{2, 3}, {}, {0, 5}, {1, 1, 7}}
	var tensors []Tensor
	for i, dt := range allDTypes {
		for j, shape := range shapes {
			n, err := ByteSize(dt, shape)
			if err != nil {
				t.Fatal(err)
			}
			tensors = append(tensors, Tensor{
				Name:  string(dt) + "/" + string(rune('a'+j)),
				DType: dt, Shape: shape,
				Data: pattern(int(n), byte(i*4+j)),
			})
		}
	}
	md := map[string]string{"format": "pt", "note": "round trip"}
	path := filepath.Join(dir, "all.safetensors")
	if err := WriteFile(path, tensors, md); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if f.Len() != len(tensors) {
		t.Fatalf("Len %d, want %d", f.Len(), len(tensors))
	}
	names := f.Names()
	if !slices.IsSorted(names) {
		t.Errorf("Names not sorted: %q", names)
	}
	if got := f.Metadata(); len(got) != 2 || got["format"] != "pt" || got["note"] != "round trip" {
		t.Errorf("Metadata %v", got)
	}
	if f.dataStart%8 != 0 {
		t.Errorf("data starts at %d, not 8-aligned", f.dataStart)
	}
	for _, want := range tensors {
		info, err := f.Info(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if info.DType != want.DType || !slices.Equal(info.Shape, want.Shape) || info.Size != int64(len(want.Data)) || info.Path != path {
			t.Errorf("%s: info %+v", want.Name, info)
		}
		if info.Offset%int64(want.DType.Size()) != 0 {
			t.Errorf("%s: offset %d not aligned to %d", want.Name, info.Offset, want.DType.Size())
		}
		if n, _ := NumElements(want.Shape); info.NumElements() != n {
			t.Errorf("%s: NumElements %d, want %d", want.Name, info.NumElements(), n)
		}
		got, err := f.Read(want.Name)
		if err != nil || !bytes.Equal(got, want.Data) {
			t.Errorf("%s: Read = % x, %v; want % x", want.Name, got, err, want.Data)
		}
		buf := make([]byte, len(want.Data))
		if err := f.ReadInto(want.Name, buf); err != nil || !bytes.Equal(buf, want.Data) {
			t.Errorf("%s: ReadInto = %v", want.Name, err)
		}
		sec, err := f.Section(want.Name)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(sec); err != nil || !bytes.Equal(got, want.Data) {
			t.Errorf("%s: Section read = %v", want.Name, err)
		}
	}
	// Tensors() is in data order: offsets never decrease, sizes tile the data.
	infos := f.Tensors()
	pos := f.dataStart
	for _, info := range infos {
		if info.Offset != pos {
			t.Fatalf("Tensors(): %s at %d, want %d", info.Name, info.Offset, pos)
		}
		pos += info.Size
	}
	st, _ := os.Stat(path)
	if pos != st.Size() {
		t.Errorf("tensors end at %d, file is %d bytes", pos, st.Size())
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("file mode %v, want 0644", st.Mode().Perm())
	}
	// Infos are copies: mutating one does not affect the file.
	info, _ := f.Info("F32/a")
	info.Shape[0] = 99
	if again, _ := f.Info("F32/a"); again.Shape[0] != 2 {
		t.Error("Info returned a shape aliasing internal state")
	}
}

// TestReferenceLayout checks our writer against files laid out by hand from
// the format's rules as the reference writer applies them: compact JSON,
// "__metadata__" first, fields dtype/shape/data_offsets, data sorted by
// descending dtype then name, header padded with spaces to 8 bytes.
func TestReferenceLayout(t *testing.T) {
	f32s := Float32sToBytes([]float32{0, 1, 2, 3, 4, 5})
	tests := []struct {
		name     string
		tensors  []Tensor
		metadata map[string]string
		want     []byte
	}{
		{
			name: "empty",
			want: rawFile(`{}      `, nil),
		},
		{
			name:     "metadata only",
			metadata: map[string]string{"framework": "pt"},
			want:     rawFile(`{"__metadata__":{"framework":"pt"}}     `, nil),
		},
		{
			name:    "one tensor, header exactly 64 bytes",
			tensors: []Tensor{{Name: "attn.0", DType: F32, Shape: []int64{1, 2, 3}, Data: f32s}},
			want:    rawFile(`{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}`, f32s),
		},
		{
			name:    "one tensor, padded header",
			tensors: []Tensor{{Name: "attn0", DType: F32, Shape: []int64{1, 1, 2, 3}, Data: f32s}},
			want:    rawFile(`{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       `, f32s),
		},
		{
			name: "mixed dtypes",
			tensors: []Tensor{
				{Name: "mask", DType: BOOL, Shape: []int64{3}, Data: []byte{1, 0, 1}},
				{Name: "w", DType: BF16, Shape: []int64{2}, Data: []byte{0x80, 0x3f, 0x00, 0x40}},
				{Name: "ids", DType: I64, Shape: []int64{1}, Data: Int64sToBytes([]int64{-1})},
				{Name: "b", DType: F32, Shape: []int64{1}, Data: Float32sToBytes([]float32{0.5})},
				{Name: "a", DType: F32, Shape: []int64{}, Data: Float32sToBytes([]float32{2})},
			},
			metadata: map[string]string{"format": "pt"},
			want: rawFile(`{"__metadata__":{"format":"pt"},`+
				`"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},`+
				`"a":{"dtype":"F32","shape":[],"data_offsets":[8,12]},`+
				`"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]},`+
				`"w":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},`+
				`"mask":{"dtype":"BOOL","shape":[3],"data_offsets":[20,23]}}  `,
				[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x40, 0, 0, 0, 0x3f, 0x80, 0x3f, 0x00, 0x40, 1, 0, 1}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out.safetensors")
			if err := WriteFile(path, tt.tensors, tt.metadata); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("written bytes differ:\n got %q\nwant %q", got, tt.want)
			}
			// The hand-made bytes read back.
			f, err := Open(writeBytes(t, dir, "ref.safetensors", tt.want))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for _, tn := range tt.tensors {
				if data, err := f.Read(tn.Name); err != nil || !bytes.Equal(data, tn.Data) {
					t.Errorf("%s: read % x, %v", tn.Name, data, err)
				}
			}
		})
	}
}

func TestOpenCorrupt(t *testing.T) {
	const hdr = `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[2],"data_offsets":[8,10]}}`
	data := pattern(10, 1)
	tooLarge := rawFile("", nil)
	tooLarge[0], tooLarge[1], tooLarge[2], tooLarge[3] = 0x01, 0xe1, 0xf5, 0x05 // 100_000_001
	hugeLen := rawFile("{}", nil)
	for i := range 8 {
		hugeLen[i] = 0xff
	}
	shortLen := rawFile("{}", nil)
	shortLen[0] = 200

	tests := []struct {
		name     string
		file     []byte
		want     error
		mentions []string
	}{
		{"empty file", nil, ErrTruncated, nil},
		{"shorter than prefix", []byte{2, 0, 0, 0, 0}, ErrTruncated, nil},
		{"header too large", tooLarge, ErrHeaderTooLarge, []string{"100000001"}},
		{"header length 2^64-1", hugeLen, ErrHeaderTooLarge, nil},
		{"header longer than file", shortLen, ErrTruncated, []string{"200"}},
		{"data truncated", rawFile(hdr, data[:9]), ErrTruncated, []string{`"b"`}},
		{"data missing", rawFile(hdr, nil), ErrTruncated, []string{`"a"`}},
		{"header truncated", rawFile(hdr, nil)[:50], ErrTruncated, nil},
		{"lying offsets past end", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, data[:8]), ErrTruncated, []string{`"a"`, "[0, 16]"}},
		{"lying offsets, wrong length", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,10]}}`, data), ErrShape, []string{`"a"`}},
		{"trailing bytes", rawFile(hdr, append(data, 0)), ErrOffsets, []string{"1 bytes"}},
		{"hole", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[1],"data_offsets":[9,10]}}`, data), ErrOffsets, []string{"hole"}},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[3],"data_offsets":[7,10]}}`, data), ErrOffsets, []string{"overlap"}},
		{"bad json", rawFile(`{"a":`, data), ErrInvalidHeader, nil},
		{"duplicate names", rawFile(`{"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, data[:2]), ErrDuplicate, []string{`"b"`}},
		{"unknown dtype", rawFile(`{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}}`, data[:2]), ErrDtype, []string{"Q4"}},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeBytes(t, dir, "c"+string(rune('a'+i))+".safetensors", tt.file)
			f, err := Open(path)
			if err == nil {
				f.Close()
			}
			wantErr(t, err, tt.want, append(tt.mentions, path)...)
		})
	}
}

func TestOpenNotAFile(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "missing.safetensors"))
	wantErr(t, err, fs.ErrNotExist, "missing.safetensors")
	_, err = Open(dir)
	if err == nil {
		t.Fatal("Open(directory) succeeded")
	}
}

func TestReadErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.safetensors")
	if err := WriteFile(path, []Tensor{
		{Name: "x", DType: F32, Shape: []int64{4}, Data: Float32sToBytes([]float32{1, 2, 3, math.Pi})},
		{Name: "y", DType: U8, Shape: []int64{1}, Data: []byte{9}},
	}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	wantErr(t, f.ReadInto("x", make([]byte, 15)), ErrSize, `"x"`, "15")
	wantErr(t, f.ReadInto("nope", make([]byte, 1)), ErrNotFound, `"nope"`, path)
	_, err = f.Read("nope")
	wantErr(t, err, ErrNotFound)
	_, err = f.Info("nope")
	wantErr(t, err, ErrNotFound)
	_, err = f.Section("nope")
	wantErr(t, err, ErrNotFound)

	// The file shrinks after Open: reads report truncation, not garbage.
	st, _ := os.Stat(path)
	if err := os.Truncate(path, st.Size()-8); err != nil {
		t.Fatal(err)
	}
	_, err = f.Read("x")
	wantErr(t, err, ErrTruncated, `"x"`)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = f.Read("y")
	if err == nil || errors.Is(err, ErrTruncated) {
		t.Errorf("read after Close: %v", err)
	}
}

// TestOpenIsLazy opens a file declaring 1 GiB of tensor data (sparse on
// disk) and checks that neither Open nor reading one small tensor allocates
// anywhere near the data size.
func TestOpenIsLazy(t *testing.T) {
	const big = 1 << 30
	dir := t.TempDir()
	hdr := `{"big":{"dtype":"BF16","shape":[536870912],"data_offsets":[0,1073741824]},"small":{"dtype":"F32","shape":[2],"data_offsets":[1073741824,1073741832]}}`
	path := writeBytes(t, dir, "big.safetensors", rawFile(hdr, nil))
	if err := os.Truncate(path, int64(8+len(hdr))+big+8); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	small, err := f.Read("small")
	if err != nil || len(small) != 8 {
		t.Fatalf("Read(small) = %v, %v", small, err)
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("Open and one small read allocated %d bytes", grew)
	}
	if info, _ := f.Info("big"); info.Size != big {
		t.Errorf("big: %+v", info)
	}
}
