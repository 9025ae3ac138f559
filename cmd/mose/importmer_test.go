package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data/npy"
)

func TestImportMER(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "train.txt"), "sample_1 10 happy 1.5\nsample_2 12 worried -2\n")
	write(filepath.Join(dir, "transcription_en_all.csv"), "name,sentence\nsample_1,hello there\nsample_2,\"well, fine\"\n")
	for _, ext := range []string{"HL-UTT", "mae_340_UTT"} {
		for _, clip := range []string{"sample_1", "sample_2"} {
			p := filepath.Join(dir, ext, clip+".npy")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := npy.Write(f, &npy.Array{DType: npy.Float32, Shape: []int{4}, Data: make([]float32, 4)}); err != nil {
				t.Fatal(err)
			}
			f.Close()
		}
	}
	out := filepath.Join(dir, "manifest.jsonl")
	args := []string{"import-mer", "--ann", filepath.Join(dir, "train.txt"), "--transcripts", filepath.Join(dir, "transcription_en_all.csv"),
		"--features", "hubert=" + filepath.Join(dir, "HL-UTT"), "--features", "face_mae=" + filepath.Join(dir, "mae_340_UTT"), "--out", out}
	stdout, code := runDataCmd(t, args...)
	if code != 0 || !strings.Contains(stdout, "wrote 2 samples") || !strings.Contains(stdout, "worry") {
		t.Fatalf("exit %d: %s", code, stdout)
	}
	b, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(b), `"hubert":"HL-UTT/sample_2.npy"`) || !strings.Contains(string(b), `"subtitle":"well, fine"`) {
		t.Fatalf("manifest: %s %v", b, err)
	}

	write(filepath.Join(dir, "train.txt"), "sample_1 10 ecstatic 1.5\n")
	os.Remove(out)
	if _, code := runDataCmd(t, args...); code != 2 {
		t.Fatalf("unknown label: exit %d", code)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("manifest written despite a bad label")
	}
	if _, code := runDataCmd(t, "import-mer", "--ann", "x"); code != 2 {
		t.Fatalf("missing flags: exit %d", code)
	}
	if _, code := runDataCmd(t, append(args[:len(args)-2], "--features", "nodir", "--out", out)...); code != 2 {
		t.Fatalf("bad --features: exit %d", code)
	}
}
