package model

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// End-of-generation comes from generation_config.json, else config.json, as
// an id or a list; a bad value is refused naming the file and key.
func TestEndTokens(t *testing.T) {
	cases := []struct {
		name       string
		config     string
		generation string // "" : no generation_config.json
		want       []int64
		err        string
	}{
		{"config id", `{"eos_token_id": 2}`, "", []int64{2}, ""},
		{"config list", `{"eos_token_id": [128001, 128008, 128009]}`, "", []int64{128001, 128008, 128009}, ""},
		{"generation wins", `{"eos_token_id": 2}`, `{"eos_token_id": [7, 9]}`, []int64{7, 9}, ""},
		{"generation without eos", `{"eos_token_id": 2}`, `{"do_sample": false}`, []int64{2}, ""},
		{"none", `{"vocab_size": 10}`, "", nil, ""},
		{"null", `{"eos_token_id": null}`, "", nil, ""},
		{"string", `{"eos_token_id": "</s>"}`, "", nil, "neither an id nor a list"},
		{"negative", `{"eos_token_id": -1}`, "", nil, "outside the vocabulary"},
		{"beyond vocab", `{"eos_token_id": [5, 200000]}`, "", nil, "outside the vocabulary"},
		{"empty list", `{"eos_token_id": []}`, "", nil, "0 ids"},
		{"bad generation file", `{"eos_token_id": 2}`, `{"eos_token_id": 1.5}`, nil, "generation_config.json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(c.config), 0o644); err != nil {
				t.Fatal(err)
			}
			if c.generation != "" {
				if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(c.generation), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := EndTokens(dir, 150000)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "eos_token_id") {
					t.Fatalf("EndTokens = %v, %v; want an error naming eos_token_id and %q", got, err, c.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Fatalf("EndTokens = %v, %v; want %v", got, err, c.want)
			}
		})
	}
}
