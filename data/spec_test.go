package data

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/modality"
)

func TestReadModelSpec(t *testing.T) {
	dir := t.TempDir()
	cfg := `{"hidden_size": 64, "vocab_size": 100,
 "mose": {"inputs":[
   {"name":"eva_patches","modality":"visual","feature_dim":5632,"tokens":256,"projector":"linear","placeholder":"<VideoHere>"},
   {"name":"hubert","modality":"audio","feature_dim":1024,"tokens":1,"projector":"linear","placeholder":"<FeatureHere>"}],
  "prompt":{"template":"<s>[INST] <video><VideoHere></video> <feature><FeatureHere></feature> The person in video says: {subtitle}. [/INST]","answer":"{label}</s>"},
  "labels":["angry","happy"], "future_key": true}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := ReadModelSpec(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Inputs) != 2 || spec.Inputs[0].Tokens != 256 || spec.Inputs[1].Dim != 1024 ||
		spec.Inputs[1].ModalityID() != modality.Audio || spec.LabelIndex("happy") != 1 || spec.FeatureTokens() != 257 {
		t.Fatalf("got %+v", spec)
	}
}

func TestReadModelSpecErrors(t *testing.T) {
	tests := []struct {
		name, config string
		want         error
		mention      string
	}{
		{"no file", "", ErrMissingFile, "config.json"},
		{"bad json", "{", ErrSpec, "config.json"},
		{"no section", `{"hidden_size": 1}`, ErrSpec, `"mose"`},
		{"bad dim", `{"mose":{"inputs":[{"name":"a","modality":"visual","feature_dim":0,"tokens":1,"placeholder":"<V>"}],"prompt":{"template":"<V>","answer":"{label}"},"labels":["x"]}}`, ErrSpec, "mose.inputs[0].feature_dim"},
		{"bad modality", `{"mose":{"inputs":[{"name":"a","modality":"smell","feature_dim":1,"tokens":1,"placeholder":"<V>"}],"prompt":{"template":"<V>","answer":"{label}"},"labels":["x"]}}`, ErrSpec, "mose.inputs[0].modality"},
		{"placeholder absent", `{"mose":{"inputs":[{"name":"a","modality":"audio","feature_dim":1,"tokens":1,"placeholder":"<A>"}],"prompt":{"template":"<V>","answer":"{label}"},"labels":["x"]}}`, ErrSpec, "mose.inputs[0].placeholder"},
		{"answer without label", `{"mose":{"inputs":[{"name":"a","modality":"audio","feature_dim":1,"tokens":1,"placeholder":"<A>"}],"prompt":{"template":"<A>","answer":"x"},"labels":["x"]}}`, ErrSpec, "mose.prompt.answer"},
		{"duplicate label", `{"mose":{"inputs":[{"name":"a","modality":"audio","feature_dim":1,"tokens":1,"placeholder":"<A>"}],"prompt":{"template":"<A>","answer":"{label}"},"labels":["x","x"]}}`, ErrSpec, "mose.labels[1]"},
		{"wrong type", `{"mose":{"inputs":"none"}}`, ErrSpec, "config.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := ReadModelSpec(dir)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.mention)
			}
		})
	}
}
