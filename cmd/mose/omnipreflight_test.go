package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// poisonMedia writes a NaN into the first float32 media tensor of a
// processor-outputs file (pixel_values_videos, pixel_values or
// input_features), leaving its header as it is.
func poisonMedia(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint64(b[:8]))
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pixel_values_videos", "pixel_values", "input_features"} {
		var info struct {
			DType   string `json:"dtype"`
			Offsets [2]int `json:"data_offsets"`
		}
		if raw, ok := hdr[k]; !ok || json.Unmarshal(raw, &info) != nil || info.DType != "F32" {
			continue
		}
		binary.LittleEndian.PutUint32(b[8+n+info.Offsets[0]:], math.Float32bits(float32(math.NaN())))
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s has no float32 media", path)
}

// A thinker run's preflight reads data.eval's media too: a NaN in an eval
// sample's video stops training before its first step (exit 2 naming
// data.eval, the sample's file and the value; no checkpoint written).
// Without data.eval in the omni
// preflight the training run goes ahead (checked: it trains, writes a
// checkpoint and fails at its evaluation).
func TestOmniEvalPreflight(t *testing.T) {
	r := newOmniRun(t, 4)
	lines, err := os.ReadFile(r.manifest)
	if err != nil {
		t.Fatal(err)
	}
	var first struct {
		Inputs string `json:"inputs"`
	}
	if err := json.Unmarshal([]byte(strings.SplitN(string(lines), "\n", 2)[0]), &first); err != nil {
		t.Fatal(err)
	}
	// the eval set: the same manifest beside a copy of the files, the first poisoned
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Dir(r.manifest))); err != nil {
		t.Fatal(err)
	}
	poisonMedia(t, filepath.Join(dir, first.Inputs))
	eval := filepath.Join(dir, filepath.Base(r.manifest))
	out := filepath.Join(t.TempDir(), "run")
	args := append([]string{"train"}, r.trainArgs(out, 2, "train.warmup_steps=1", "train.save_every=1", "data.eval="+eval)...)
	code, msg := runMose(t, args...)
	if code != 2 || !strings.Contains(msg, "data.eval") || !strings.Contains(msg, first.Inputs) || !strings.Contains(msg, "non-finite") {
		t.Errorf("train with a NaN in data.eval: exit %d, want 2 naming data.eval, %s and the value: %s", code, first.Inputs, msg)
	}
	if _, err := os.Stat(filepath.Join(out, "checkpoints")); !os.IsNotExist(err) {
		t.Errorf("training ran before the bad eval set was refused (%v)", err)
	}
}
