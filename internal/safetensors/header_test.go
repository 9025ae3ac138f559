package safetensors

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseHeaderValid(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		names    []string
		dataSize int64
		metadata map[string]string
	}{
		{"empty", `{}`, nil, 0, nil},
		{"padded", `{}      `, nil, 0, nil},
		{"whitespace inside", "{ \"a\" : {\"dtype\":\"F32\",\n\"shape\":[ 2 ],\t\"data_offsets\":[0,8]} }", []string{"a"}, 8, nil},
		{"metadata", `{"__metadata__":{"format":"pt","x":""},"w":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]}}`,
			[]string{"w"}, 12, map[string]string{"format": "pt", "x": ""}},
		{"null metadata", `{"__metadata__":null}`, nil, 0, nil},
		{"rank 0", `{"s":{"dtype":"I64","shape":[],"data_offsets":[0,8]}}`, []string{"s"}, 8, nil},
		{"zero size", `{"z":{"dtype":"F32","shape":[0,4],"data_offsets":[0,0]},"y":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`,
			[]string{"y", "z"}, 0, nil},
		{"zero size between", `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"z":{"dtype":"F32","shape":[0],"data_offsets":[1,1]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`,
			[]string{"a", "b", "z"}, 3, nil},
		{"any order", `{"b":{"dtype":"I32","shape":[1],"data_offsets":[4,8]},"a":{"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}`,
			[]string{"a", "b"}, 8, nil},
		{"unknown field ignored", `{"a":{"dtype":"I8","extra":{"k":[1,2]},"shape":[3],"data_offsets":[0,3]}}`, []string{"a"}, 3, nil},
		{"every dtype", `{"a":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},"b":{"dtype":"I16","shape":[1],"data_offsets":[8,10]},"c":{"dtype":"F16","shape":[1],"data_offsets":[10,12]},"d":{"dtype":"I32","shape":[1],"data_offsets":[12,16]},"e":{"dtype":"U8","shape":[1],"data_offsets":[16,17]}}`,
			[]string{"a", "b", "c", "d", "e"}, 17, nil},
		{"unicode name", `{"ç\u00e9\"\\":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []string{"çé\"\\"}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseHeader("x.safetensors", []byte(tt.header))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range h.entries {
				names = append(names, e.name)
			}
			if !slices.Equal(names, tt.names) {
				t.Errorf("names %q, want %q", names, tt.names)
			}
			if h.dataSize != tt.dataSize {
				t.Errorf("dataSize %d, want %d", h.dataSize, tt.dataSize)
			}
			if len(h.metadata) != len(tt.metadata) {
				t.Errorf("metadata %v, want %v", h.metadata, tt.metadata)
			}
			for k, v := range tt.metadata {
				if h.metadata[k] != v {
					t.Errorf("metadata[%q] = %q, want %q", k, h.metadata[k], v)
				}
			}
		})
	}
}

func TestParseHeaderInvalid(t *testing.T) {
	const a = `"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}`
	tests := []struct {
		name     string
		header   string
		want     error
		mentions []string
	}{
		{"empty", ``, ErrInvalidHeader, nil},
		{"leading space", ` {}`, ErrInvalidHeader, []string{"'{'"}},
		{"not an object", `[1]`, ErrInvalidHeader, nil},
		{"unterminated", `{` + a, ErrInvalidHeader, nil},
		{"bad json", `{"a":{"dtype":"F32",}}`, ErrInvalidHeader, []string{"at byte"}},
		{"trailing garbage", `{` + a + `}x`, ErrInvalidHeader, nil},
		{"second object", `{} {}`, ErrInvalidHeader, nil},
		{"nul padding", "{}\x00\x00", ErrInvalidHeader, nil},
		{"invalid utf8", "{\"\xff\":{}}", ErrInvalidHeader, []string{"UTF-8"}},
		{"entry not object", `{"a":[1]}`, ErrInvalidHeader, []string{`"a"`}},
		{"duplicate tensor", `{` + a + `,` + a + `}`, ErrDuplicate, []string{`"a"`}},
		{"duplicate tensor, same data", `{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, ErrDuplicate, []string{`"a"`}},
		{"duplicate metadata entry", `{"__metadata__":{},"__metadata__":{}}`, ErrDuplicate, nil},
		{"duplicate metadata key", `{"__metadata__":{"k":"1","k":"2"}}`, ErrDuplicate, []string{`"k"`}},
		{"metadata not object", `{"__metadata__":"pt"}`, ErrInvalidHeader, nil},
		{"metadata non-string value", `{"__metadata__":{"total":3}}`, ErrInvalidHeader, []string{"total"}},
		{"duplicate field", `{"a":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, ErrInvalidHeader, []string{"dtype"}},
		{"missing dtype", `{"a":{"shape":[2],"data_offsets":[0,8]}}`, ErrInvalidHeader, []string{"dtype"}},
		{"missing shape", `{"a":{"dtype":"F32","data_offsets":[0,8]}}`, ErrInvalidHeader, []string{"shape"}},
		{"missing offsets", `{"a":{"dtype":"F32","shape":[2]}}`, ErrInvalidHeader, []string{"data_offsets"}},
		{"dtype not string", `{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}`, ErrInvalidHeader, nil},
		{"unknown dtype", `{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}`, ErrDtype, []string{`"a"`, "F31"}},
		{"lowercase dtype", `{"a":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}}`, ErrDtype, nil},
		{"sub-byte dtype", `{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, ErrDtype, nil},
		{"negative dim", `{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, ErrShape, []string{"negative"}},
		{"fractional dim", `{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}`, ErrInvalidHeader, nil},
		{"exponent dim", `{"a":{"dtype":"F32","shape":[2e0],"data_offsets":[0,8]}}`, ErrInvalidHeader, nil},
		{"string dim", `{"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}`, ErrInvalidHeader, nil},
		{"huge dim", `{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}`, ErrShape, []string{"out of range"}},
		{"overflowing shape", `{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}`, ErrShape, []string{"overflow"}},
		{"overflowing bytes", `{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}`, ErrShape, []string{"overflow"}},
		{"shape/length mismatch", `{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, ErrShape, []string{`"a"`, "12 bytes", "span 8"}},
		{"dtype/length mismatch", `{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}`, ErrShape, nil},
		{"one offset", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[8]}}`, ErrOffsets, []string{"2 integers"}},
		{"three offsets", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}}`, ErrOffsets, nil},
		{"negative offset", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}`, ErrOffsets, nil},
		{"reversed offsets", `{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, ErrOffsets, []string{"before"}},
		{"hole at start", `{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, ErrOffsets, []string{"hole", `"a"`}},
		{"hole between", `{` + a + `,"b":{"dtype":"U8","shape":[1],"data_offsets":[9,10]}}`, ErrOffsets, []string{"hole", `"b"`}},
		{"overlap", `{` + a + `,"b":{"dtype":"U8","shape":[4],"data_offsets":[6,10]}}`, ErrOffsets, []string{"overlap", `"b"`, `"a"`}},
		{"same range twice", `{` + a + `,"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, ErrOffsets, []string{"overlap"}},
		{"zero size inside another", `{` + a + `,"z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}`, ErrOffsets, []string{`"a"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseHeader("bad.safetensors", []byte(tt.header))
			wantErr(t, err, tt.want, append(tt.mentions, "bad.safetensors")...)
			var se *Error
			if !errors.As(err, &se) || se.Path != "bad.safetensors" {
				t.Errorf("error %v is not an *Error naming the file", err)
			}
		})
	}
}

func TestEncodeHeaderRoundTrip(t *testing.T) {
	entries := []entry{
		{name: "b\"\\\n\x01<>&é", dtype: F32, shape: []int64{2, 1}, begin: 0, end: 8},
		{name: "a", dtype: BOOL, shape: []int64{}, begin: 8, end: 9},
	}
	md := map[string]string{"z": "1", "format": "pt\t"}
	b, err := encodeHeader(entries, md)
	if err != nil {
		t.Fatal(err)
	}
	if len(b)%8 != 0 {
		t.Errorf("header of %d bytes is not padded to 8", len(b))
	}
	if !strings.HasPrefix(string(b), `{"__metadata__":{"format":"pt\t","z":"1"},"b\"\\\n\u0001<>&é":{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]},"a":`) {
		t.Errorf("unexpected header %q", b)
	}
	h, err := parseHeader("x", b)
	if err != nil {
		t.Fatal(err)
	}
	if h.dataSize != 9 || len(h.entries) != 2 || h.metadata["format"] != "pt\t" {
		t.Fatalf("round trip gave %+v", h)
	}
	e := h.entries[h.byName[entries[0].name]]
	if !slices.Equal(e.shape, []int64{2, 1}) || e.dtype != F32 {
		t.Errorf("entry %+v", e)
	}
}
