package trainer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/export"
	"github.com/mose-llm/mose/infer"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
)

// seedRun is a run with checkpoints at steps 2, 4 and 6 (made once, copied
// per case).
var seedRun struct {
	once sync.Once
	dir  string
	err  error
}

func ckptRun(t *testing.T) string {
	t.Helper()
	seedRun.once.Do(func() {
		cfg := fixture.Recipe(t, "train.max_steps=6", "train.save_every=2", "train.keep_last=10")
		seedRun.dir = filepath.Join(filepath.Dir(fixture.Model), "ckpt-seed") // removed by TestMain
		cfg.Run.OutputDir = seedRun.dir
		_, seedRun.err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog()})
	})
	if seedRun.err != nil {
		t.Fatal(seedRun.err)
	}
	dst := filepath.Join(t.TempDir(), "run")
	if err := os.CopyFS(dst, os.DirFS(seedRun.dir)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// treeSums maps every regular file under dir to its SHA-256.
func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h := sha256.Sum256(b)
		out[p] = hex.EncodeToString(h[:])
		return nil
	})
	return out
}

// rawEdit rewrites trainer_state.json as a JSON map (checksum untouched).
func rawEdit(t *testing.T, dir string, fn func(m map[string]any)) {
	t.Helper()
	path := filepath.Join(dir, checkpoint.StateFile)
	var m map[string]any
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, _ = json.MarshalIndent(m, "", "  ")
	os.WriteFile(path, b, 0o644)
}

// flipByte flips one bit of a file's last byte (the tensor data).
func flipByte(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x01
	os.WriteFile(path, b, 0o644)
}

// nanTensor overwrites the first element of a file's first tensor with NaN.
func nanTensor(t *testing.T, path string) {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	off := f.Tensors()[0].Offset
	f.Close()
	b, _ := os.ReadFile(path)
	copy(b[off:], []byte{0, 0, 0xc0, 0x7f})
	os.WriteFile(path, b, 0o644)
}

// TestCheckpointValidation: every damaged or inconsistent checkpoint is
// refused before use, by --resume PATH and by --resume auto, with an error
// naming the file or field; auto names the older checkpoint that passes;
// nothing under the run directory changes.
func TestCheckpointValidation(t *testing.T) {
	cases := []struct {
		name    string
		damage  func(t *testing.T, ck string)
		mention string
	}{
		{"empty state", func(t *testing.T, ck string) {
			os.WriteFile(filepath.Join(ck, checkpoint.StateFile), []byte("{}"), 0o644)
		}, "checksum"},
		{"no checksum (old format)", func(t *testing.T, ck string) { rawEdit(t, ck, func(m map[string]any) { delete(m, "checksum") }) }, `"checksum"`},
		{"missing field", func(t *testing.T, ck string) { rawEdit(t, ck, func(m map[string]any) { delete(m, "optimizer_steps") }) }, "optimizer_steps"},
		{"unknown field", func(t *testing.T, ck string) { rawEdit(t, ck, func(m map[string]any) { m["warmup"] = 3 }) }, "warmup"},
		{"duplicate key", func(t *testing.T, ck string) {
			p := filepath.Join(ck, checkpoint.StateFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte("{"), []byte(`{"step": 0,`), 1), 0o644)
		}, `duplicate key "step"`},
		{"edited value", func(t *testing.T, ck string) { rawEdit(t, ck, func(m map[string]any) { m["lr"] = 0.5 }) }, "checksum mismatch"},
		{"not JSON", func(t *testing.T, ck string) {
			os.WriteFile(filepath.Join(ck, checkpoint.StateFile), []byte("step: 6\n"), 0o644)
		}, checkpoint.StateFile},
		{"negative optimizer_steps", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.OptimizerSteps = -1 })
		}, "optimizer_steps"},
		{"negative step", func(t *testing.T, ck string) { testfix.Reseal(t, ck, func(st *checkpoint.State) { st.Step = -6 }) }, "step -6"},
		{"step differs from the directory", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.Step, st.OptimizerSteps = 7, 7 })
		}, "directory name"},
		{"skipped inconsistent", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.SkippedSteps = 2 })
		}, "skipped_steps"},
		{"negative lr", func(t *testing.T, ck string) { testfix.Reseal(t, ck, func(st *checkpoint.State) { st.LR = -1 }) }, "lr"},
		{"zero modality weight", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.ModalityWeights[1] = 0 })
		}, "modality_weights[1]"},
		{"epoch differs from sampler", func(t *testing.T, ck string) { testfix.Reseal(t, ck, func(st *checkpoint.State) { st.Epoch = 3 }) }, "epoch"},
		{"sampler at start", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.Sampler.Cursor, st.Sampler.Epoch, st.Epoch = 0, 0, 0 })
		}, "sampler"},
		{"rng scheme", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.RNG.Scheme = "torch.get_rng_state" })
		}, "rng.scheme"},
		{"best step ahead", func(t *testing.T, ck string) { testfix.Reseal(t, ck, func(st *checkpoint.State) { st.BestStep = 99 }) }, "best_step"},
		{"log interval", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.Interval.Skipped = 5 })
		}, "log_interval"},
		{"no file checksums", func(t *testing.T, ck string) {
			testfix.Reseal(t, ck, func(st *checkpoint.State) { st.Files = map[string]string{} })
		}, "files"},
		{"bit flip in adapter", func(t *testing.T, ck string) { flipByte(t, filepath.Join(ck, checkpoint.AdapterFile)) }, checkpoint.AdapterFile},
		{"bit flip in optimizer", func(t *testing.T, ck string) { flipByte(t, filepath.Join(ck, checkpoint.OptimizerFile)) }, checkpoint.OptimizerFile},
		{"recipe edited", func(t *testing.T, ck string) {
			p := filepath.Join(ck, checkpoint.RecipeFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, "# edited\n"...), 0o644)
		}, checkpoint.RecipeFile},
		{"NaN adapter with valid checksums", func(t *testing.T, ck string) {
			nanTensor(t, filepath.Join(ck, checkpoint.AdapterFile))
			testfix.Reseal(t, ck, func(*checkpoint.State) {})
		}, "NaN"},
		{"NaN moment with valid checksums", func(t *testing.T, ck string) {
			nanTensor(t, filepath.Join(ck, checkpoint.OptimizerFile))
			testfix.Reseal(t, ck, func(*checkpoint.State) {})
		}, "NaN"},
		{"adapter missing", func(t *testing.T, ck string) { os.Remove(filepath.Join(ck, checkpoint.AdapterFile)) }, checkpoint.AdapterFile},
		{"adapter is a FIFO", func(t *testing.T, ck string) {
			p := filepath.Join(ck, checkpoint.AdapterFile)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Skip(err)
			}
		}, "not a regular file"},
		{"state missing", func(t *testing.T, ck string) { os.Remove(filepath.Join(ck, checkpoint.StateFile)) }, checkpoint.StateFile},
		{"state truncated", func(t *testing.T, ck string) {
			p := filepath.Join(ck, checkpoint.StateFile)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)/2], 0o644)
		}, checkpoint.StateFile},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := ckptRun(t)
			root := filepath.Join(out, "checkpoints")
			newest := filepath.Join(root, checkpoint.StepDir(6))
			c.damage(t, newest)
			before := treeSums(t, out)
			if _, err := checkpoint.Find(root, newest); !errors.Is(err, checkpoint.ErrResume) || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("--resume PATH: want ErrResume mentioning %q, got %v", c.mention, err)
			}
			_, err := checkpoint.Find(root, "auto")
			if !errors.Is(err, checkpoint.ErrResume) || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("--resume auto: want ErrResume mentioning %q, got %v", c.mention, err)
			}
			if err != nil && !strings.Contains(err.Error(), "--resume "+filepath.Join(root, checkpoint.StepDir(4))) {
				t.Errorf("--resume auto does not point at the older valid checkpoint: %v", err)
			}
			if _, err := checkpoint.Read(newest); !errors.Is(err, checkpoint.ErrCheckpoint) {
				t.Errorf("checkpoint.Read (eval, export): want ErrCheckpoint, got %v", err)
			}
			if after := treeSums(t, out); len(after) != len(before) {
				t.Errorf("files changed: %d before, %d after", len(before), len(after))
			} else {
				for p, h := range before {
					if after[p] != h {
						t.Errorf("%s changed", p)
					}
				}
			}
		})
	}
	// The untouched copy passes.
	out := ckptRun(t)
	if _, err := checkpoint.Read(filepath.Join(out, "checkpoints", checkpoint.StepDir(6))); err != nil {
		t.Fatalf("an intact checkpoint fails validation: %v", err)
	}
}

// TestResumeAutoDamagedRun: Run with --resume auto on a damaged newest
// checkpoint fails with ErrResume before writing anything; Evaluate and
// Export refuse it too.
func TestResumeAutoDamagedRun(t *testing.T) {
	out := ckptRun(t)
	ck := filepath.Join(out, "checkpoints", checkpoint.StepDir(6))
	nanTensor(t, filepath.Join(ck, checkpoint.AdapterFile))
	testfix.Reseal(t, ck, func(*checkpoint.State) {})
	before := treeSums(t, out)
	cfg := fixture.Recipe(t, "train.max_steps=8", "train.save_every=2", "train.keep_last=10")
	cfg.Run.OutputDir = out
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"}); !errors.Is(err, checkpoint.ErrResume) || !strings.Contains(err.Error(), checkpoint.StepDir(4)) {
		t.Errorf("Run --resume auto: want ErrResume naming %s, got %v", checkpoint.StepDir(4), err)
	}
	if _, err := infer.Evaluate(context.Background(), cfg, ck, t.TempDir()); !errors.Is(err, checkpoint.ErrCheckpoint) {
		t.Errorf("Evaluate: want ErrCheckpoint, got %v", err)
	}
	if _, err := export.Export(context.Background(), export.Options{Checkpoint: ck, Format: export.FormatPEFT, Out: filepath.Join(t.TempDir(), "x"), Log: testfix.QuietLog()}); inputerr.Classify(err) != inputerr.Input || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("Export: want a bad-input error naming the NaN, got %v", err)
	}
	after := treeSums(t, out)
	for p, h := range before {
		if after[p] != h {
			t.Errorf("%s changed", p)
		}
	}
	if len(after) != len(before) {
		t.Errorf("%d files before, %d after", len(before), len(after))
	}
}

// TestRotationSafety: rotation keeps the newest checkpoint that passes
// validation when newer ones are damaged, and never deletes a checkpoint of
// another lineage.
func TestRotationSafety(t *testing.T) {
	out := ckptRun(t)
	root := filepath.Join(out, "checkpoints")
	st, err := checkpoint.Decode(filepath.Join(root, checkpoint.StepDir(6)))
	if err != nil {
		t.Fatal(err)
	}
	flipByte(t, filepath.Join(root, checkpoint.StepDir(6), checkpoint.AdapterFile)) // newest damaged
	testfix.Reseal(t, filepath.Join(root, checkpoint.StepDir(2)), func(s *checkpoint.State) { s.Lineage = "another-run" })
	if err := checkpoint.Rotate(root, 1, 0, st.Lineage, testfix.QuietLog()); err != nil {
		t.Fatal(err)
	}
	steps, _ := checkpoint.List(root)
	if want := []int{2, 4, 6}; !equalInts(steps, want) {
		t.Errorf("after rotation: %v, want %v (6 newest, 4 newest valid, 2 another lineage)", steps, want)
	}
	// Once step 4's lineage matches and a valid newer one exists, old ones go.
	testfix.Reseal(t, filepath.Join(root, checkpoint.StepDir(2)), func(s *checkpoint.State) { s.Lineage = st.Lineage })
	if err := checkpoint.Rotate(root, 1, 0, st.Lineage, testfix.QuietLog()); err != nil {
		t.Fatal(err)
	}
	if steps, _ := checkpoint.List(root); !equalInts(steps, []int{4, 6}) {
		t.Errorf("second rotation: %v, want [4 6]", steps)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStateRoundTrip: what checkpoint.Write writes decodes exactly, and every
// float survives.
func TestStateRoundTrip(t *testing.T) {
	out := ckptRun(t)
	st, err := checkpoint.Read(filepath.Join(out, "checkpoints", checkpoint.StepDir(6)))
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 6 || st.OptimizerSteps != 6 || st.Lineage == "" || len(st.Files) != 3 || math.IsNaN(st.LR) {
		t.Errorf("state: %+v", st)
	}
}

// TestUnusedTensorsRefused: a checkpoint tensor the recipe does not take is
// an error naming it, not silently dropped: an extra tensor in the adapter
// file on resume, and trained projectors evaluated with a recipe that does
// not load them.
func TestUnusedTensorsRefused(t *testing.T) {
	out := ckptRun(t)
	ck := filepath.Join(out, "checkpoints", checkpoint.StepDir(6))
	f, err := safetensors.Open(filepath.Join(ck, checkpoint.AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		b, _ := f.Read(info.Name)
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	f.Close()
	extra := append(ts, safetensors.Tensor{Name: "model.layers.0.mlp.up_proj.mose.omni.lora_A.weight", DType: safetensors.F32,
		Shape: []int64{1}, Data: make([]byte, 4)})
	if err := safetensors.WriteFile(filepath.Join(ck, checkpoint.AdapterFile), extra, nil); err != nil {
		t.Fatal(err)
	}
	testfix.Reseal(t, ck, func(*checkpoint.State) {})
	cfg := fixture.Recipe(t, "train.max_steps=6", "train.save_every=2", "train.keep_last=10") // the seed run's recipe
	cfg.Run.OutputDir = out
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: ck}); !errors.Is(err, checkpoint.ErrResume) || !strings.Contains(err.Error(), "up_proj") {
		t.Errorf("resume with an extra adapter tensor: want ErrResume naming it, got %v", err)
	}
	// The projectors were trained (the fixture recipe: model.train_projectors from
	// demo-tiny): an eval recipe without them must not drop them.
	noProj := fixture.Recipe(t, "model.train_projectors=false")
	if _, err := infer.Evaluate(context.Background(), noProj, filepath.Join(out, "checkpoints", checkpoint.StepDir(4)), t.TempDir()); err == nil || !strings.Contains(err.Error(), "projectors.") {
		t.Errorf("eval without train_projectors of a checkpoint with trained projectors: want an error naming them, got %v", err)
	}
}
