package safetensors

import (
	"cmp"
	"errors"
	"slices"
	"testing"
)

// headerSeeds are valid and invalid headers for the fuzz corpus.
var headerSeeds = []string{
	`{}`,
	`{}      `,
	`{"__metadata__":{"format":"pt"}}`,
	`{"__metadata__":null,"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},"b":{"dtype":"I64","shape":[],"data_offsets":[12,20]}}`,
	`{"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"y":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`,
	`{"a":{"dtype":"F16","shape":[1],"data_offsets":[0,2],"x":[{}]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}}`,
	`{"a":{"dtype":"Q8","shape":[2],"data_offsets":[0,2]}}`,
	`{"__metadata__":{"k":1}}`,
	`{"a":`,
	` {}`,
	"{\"\xff\":1}",
	`[]`,
}

// FuzzParseHeader checks that the header parser never panics, and that any
// header it accepts is internally consistent and survives re-encoding.
func FuzzParseHeader(f *testing.F) {
	for _, s := range headerSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader("fuzz", b)
		if err != nil {
			var se *Error
			if !errors.As(err, &se) || se.Path != "fuzz" {
				t.Fatalf("error %v is not an *Error naming the file", err)
			}
			return
		}
		if len(h.entries) != len(h.byName) {
			t.Fatalf("%d entries, %d names", len(h.entries), len(h.byName))
		}
		var pos int64
		order := h.layoutOrder()
		for _, i := range order {
			e := h.entries[i]
			size, err := ByteSize(e.dtype, e.shape)
			if err != nil || e.begin != pos || e.end-e.begin != size {
				t.Fatalf("accepted inconsistent entry %+v (pos %d, size %d, %v)", e, pos, size, err)
			}
			pos = e.end
		}
		if pos != h.dataSize {
			t.Fatalf("dataSize %d, tensors end at %d", h.dataSize, pos)
		}
		if !slices.IsSortedFunc(h.entries, func(a, b entry) int { return cmp.Compare(a.name, b.name) }) {
			t.Fatal("entries not sorted by name")
		}
		ordered := make([]entry, len(order))
		for k, i := range order {
			ordered[k] = h.entries[i]
		}
		enc, err := encodeHeader(ordered, h.metadata)
		if err != nil {
			return // e.g. a name that is not valid UTF-8 after decoding
		}
		h2, err := parseHeader("fuzz", enc)
		if err != nil {
			t.Fatalf("re-encoded header %q rejected: %v", enc, err)
		}
		if len(h2.entries) != len(h.entries) || h2.dataSize != h.dataSize || len(h2.metadata) != len(h.metadata) {
			t.Fatalf("re-encoded header differs: %q", enc)
		}
		for i, e := range h.entries {
			e2 := h2.entries[i]
			if e.name != e2.name || e.dtype != e2.dtype || e.begin != e2.begin || e.end != e2.end || !slices.Equal(e.shape, e2.shape) {
				t.Fatalf("entry %+v re-parsed as %+v", e, e2)
			}
		}
	})
}

// FuzzParseIndex checks that the index parser never panics and that every
// shard name it accepts is a local path.
func FuzzParseIndex(f *testing.F) {
	for _, s := range []string{
		`{"metadata":{"total_size":3},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}`,
		`{"weight_map":{"a":"../x.safetensors"}}`,
		`{"weight_map":{"a":"/abs"}}`,
		`{"weight_map":{"a":"x","a":"y"}}`,
		`{"weight_map":{}}`,
		`{"weight_map":[]}`,
		`{"metadata":{}}`,
		`{"weight_map":{"a":1}}`,
		`{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := parseIndex("fuzz", b)
		if err != nil {
			return
		}
		if len(idx.weightMap) == 0 || len(idx.shards) == 0 {
			t.Fatal("accepted an index without tensors")
		}
		for _, s := range idx.shards {
			if s == "" || s[0] == '/' || s == ".." || len(s) >= 3 && s[:3] == "../" {
				t.Fatalf("accepted unsafe shard %q", s)
			}
		}
	})
}
