package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/media"
)

// mediaSet writes n synthetic clips and their media manifest, and an
// omni-tiny model, under dir (synth-data --media, init-model).
func mediaSet(t *testing.T, dir string, n string) (set, model string) {
	t.Helper()
	if _, err := media.Locate(context.Background()); err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	set, model = filepath.Join(dir, "set"), filepath.Join(dir, "model")
	for _, a := range [][]string{{"synth-data", "--media", "--out", set, "--samples", n}, {"init-model", "--preset", "omni-tiny", "--out", model}} {
		if code, msg := runMose(t, a...); code != 0 {
			t.Fatalf("%v: exit %d: %s", a, code, msg)
		}
	}
	return set, model
}

func prepareArgs(model, train, cache string, extra ...string) []string {
	args := []string{"prepare-data", "--recipe", "omni-tiny-media", "--no-progress"}
	for _, s := range append([]string{"model.path=" + model, "model.create=", "data.train=" + train, "data.synth=", "data.eval=",
		"data.cache_dir=" + cache, "run.threads=1"}, extra...) {
		args = append(args, "--set", s)
	}
	return args
}

func entries(t *testing.T, dir string) int {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	return len(m)
}

// prepare-data fills both stages; under a launcher's environment rank r
// fills samples i % world == r only (two ranks: 3 and 2 of 5), and a
// second pass finds everything.
func TestPrepareData(t *testing.T) {
	dir := t.TempDir()
	set, model := mediaSet(t, dir, "5")
	cache := filepath.Join(dir, "cache")
	train := filepath.Join(set, "train.jsonl")
	for rank, want := range []int{3, 5} { // cumulative entries after ranks 0 and 1
		t.Setenv("WORLD_SIZE", "2")
		t.Setenv("RANK", []string{"0", "1"}[rank])
		t.Setenv("LOCAL_RANK", []string{"0", "1"}[rank])
		t.Setenv("MASTER_ADDR", "127.0.0.1")
		t.Setenv("MASTER_PORT", "29511")
		code, msg := runMose(t, prepareArgs(model, train, cache)...)
		if code != 0 {
			t.Fatalf("rank %d: exit %d: %s", rank, code, msg)
		}
		if p, e := entries(t, filepath.Join(cache, "proc")), entries(t, filepath.Join(cache, "enc")); p != want || e != want {
			t.Fatalf("after rank %d: %d processor and %d encoder entries, want %d each (%s)", rank, p, e, want, msg)
		}
	}
	for _, k := range []string{"WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"} {
		os.Unsetenv(k)
	}
	code, msg := runMose(t, prepareArgs(model, train, cache)...)
	if code != 0 || !strings.Contains(msg, "5 samples (rank 0 of 1): 0 processed, 0 tower outputs computed, 5 found") {
		t.Fatalf("second pass: exit %d: %s", code, msg)
	}
}

// A bad clip exits 2 naming the file and leaves no cache entry.
func TestPrepareDataBadClips(t *testing.T) {
	dir := t.TempDir()
	set, model := mediaSet(t, dir, "3")
	ff, _ := media.Locate(context.Background())
	good, err := os.ReadFile(filepath.Join(set, "clips", "train-0000.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		if err := os.WriteFile(filepath.Join(set, "clips", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return "clips/" + name
	}
	gen := func(name string, args ...string) string {
		p := filepath.Join(set, "clips", name)
		if out, err := exec.Command(ff.Path, append(append([]string{"-hide_banner", "-v", "error", "-y"}, args...), p)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg: %v: %s", err, out)
		}
		return "clips/" + name
	}
	cases := []struct{ name, video string }{
		{"not media", write("notes.mp4", []byte(strings.Repeat("not a video\n", 100)))},
		{"truncated", write("cut.mp4", good[:len(good)/3])},
		{"zero length", write("empty.mp4", nil)},
		{"no video stream", gen("tone.m4a", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=1", "-c:a", "aac")},
		{"no audio with use_audio_in_video", gen("silent.mp4", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "mpeg4")},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			manifest := filepath.Join(set, "bad-"+strings.ReplaceAll(c.name, " ", "-")+".jsonl")
			line := `{"id":"bad","subset":"consistent","label":"happy","video":"` + c.video + `","subtitle":"Feel?"}` + "\n"
			if err := os.WriteFile(manifest, []byte(line), 0o644); err != nil {
				t.Fatal(err)
			}
			cache := filepath.Join(t.TempDir(), "cache")
			code, msg := runMose(t, prepareArgs(model, manifest, cache)...)
			if code != 2 || !strings.Contains(msg, filepath.Base(c.video)) {
				t.Fatalf("exit %d, want 2 naming %s: %s", code, c.video, msg)
			}
			if n := entries(t, filepath.Join(cache, "proc")) + entries(t, filepath.Join(cache, "enc")); n != 0 {
				t.Fatalf("a bad clip left %d cache entries", n)
			}
			if tmp, _ := filepath.Glob(filepath.Join(cache, "*", ".*")); len(tmp) != 0 {
				t.Fatalf("temporary files left: %v", tmp)
			}
		})
	}
}
