package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data/synth"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/plots"
	"github.com/mose-llm/mose/stack"
)

// e2e holds what the end-to-end tests share: a mose binary built once, a
// tiny model and a small synthetic dataset.
var e2e struct {
	bin, model, train, eval string
	err                     error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mose-e2e-")
	if err != nil {
		panic(err)
	}
	e2e.bin = filepath.Join(dir, "mose")
	// The data cache of every omni run here (in process and the binary's):
	// the test's own, not the user's.
	os.Setenv("MOSE_DATA_CACHE_DIR", filepath.Join(dir, "datacache"))
	build := exec.Command("go", "build", "-o", e2e.bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		e2e.err = err
		os.Stderr.Write(out)
	}
	e2e.model = filepath.Join(dir, "model")
	if _, err := stack.InitModelDir(e2e.model, stack.InitModel{Preset: "tiny", Seed: 5}); err != nil {
		panic(err)
	}
	p, _ := synth.LookupPreset("tiny")
	cfg := synth.DefaultConfig(p)
	cfg.Train, cfg.Eval = 160, 27
	if _, err := synth.Generate(filepath.Join(dir, "data"), cfg, false); err != nil {
		panic(err)
	}
	e2e.train, e2e.eval = filepath.Join(dir, "data", "train.jsonl"), filepath.Join(dir, "data", "eval.jsonl")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// recipeArgs are train flags for a fast run over the shared fixture.
func recipeArgs(out string, sets ...string) []string {
	args := []string{"--recipe", "demo-tiny"}
	for _, s := range append([]string{
		"model.path=" + e2e.model, "model.create=", "data.train=" + e2e.train, "data.eval=" + e2e.eval,
		"data.synth=", "run.output_dir=" + out, "run.threads=1", "train.batch_size=8", "train.log_every=1",
		"train.eval_every=0", "train.keep_best_by=", "train.warmup_steps=2", "adapters.gate.noise=0.1",
	}, sets...) {
		args = append(args, "--set", s)
	}
	return args
}

// runMose runs the CLI in-process and returns its exit code and error text.
func runMose(t *testing.T, args ...string) (int, string) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"--log-level", "error"}, args...))
	err := root.ExecuteContext(context.Background())
	msg := out.String()
	if err != nil {
		msg += err.Error()
	}
	return exitCode(err), msg
}

// TestBadRecipes: each bad input is a clear error, exit 2, and nothing is
// written under output_dir.
func TestBadRecipes(t *testing.T) {
	noTok := filepath.Join(t.TempDir(), "model-without-tokenizer")
	os.CopyFS(noTok, os.DirFS(e2e.model))
	os.Remove(filepath.Join(noTok, "tokenizer.json"))
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badYAML, []byte("train:\n  lr: [1e-3\n"), 0o644)
	cases := []struct {
		name    string
		args    func(out string) []string
		mention string
	}{
		{"unknown key", func(o string) []string { return recipeArgs(o, "train.lrr=1") }, "train.lrr"},
		{"wrong type", func(o string) []string { return recipeArgs(o, "train.lr=fast") }, "train.lr"},
		{"negative lr", func(o string) []string { return recipeArgs(o, "train.lr=-1") }, "train.lr"},
		{"missing model", func(o string) []string { return recipeArgs(o, "model.path=/nonexistent/model") }, "/nonexistent/model"},
		{"missing data", func(o string) []string { return recipeArgs(o, "data.train=/nonexistent/train.jsonl") }, "/nonexistent/train.jsonl"},
		{"missing eval data", func(o string) []string { return recipeArgs(o, "data.eval=/nonexistent/eval.jsonl") }, "/nonexistent/eval.jsonl"},
		{"target module not found", func(o string) []string { return recipeArgs(o, "adapters.targets=[qkv_proj]") }, "qkv_proj"},
		{"top_k above experts", func(o string) []string { return recipeArgs(o, "adapters.gate.top_k=5") }, "top_k"},
		{"no CUDA", func(o string) []string { return recipeArgs(o, "run.device=cuda:0") }, "cuda"},
		{"no tokenizer", func(o string) []string { return recipeArgs(o, "model.path="+noTok) }, "tokenizer"},
		{"unknown recipe", func(o string) []string { return []string{"--recipe", "/nonexistent/recipe.yaml"} }, "recipe.yaml"},
		{"malformed yaml", func(o string) []string { return []string{"--recipe", badYAML} }, "bad.yaml"},
		{"unknown flag", func(o string) []string { return append(recipeArgs(o), "--resum", "auto") }, "resum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			code, msg := runMose(t, append([]string{"train"}, c.args(out)...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2: %s", code, msg)
			}
			if !strings.Contains(msg, c.mention) {
				t.Errorf("error does not mention %q: %s", c.mention, msg)
			}
			if entries, err := os.ReadDir(out); err == nil && len(entries) > 0 {
				t.Errorf("wrote %d entries under output_dir", len(entries))
			}
		})
	}
	// Resuming with a recipe changed in a key that breaks exactness is refused,
	// and so is a fresh run into a directory that holds checkpoints.
	out := filepath.Join(t.TempDir(), "run")
	if code, msg := runMose(t, append([]string{"train"}, recipeArgs(out, "train.max_steps=2")...)...); code != 0 {
		t.Fatalf("seed run: exit %d: %s", code, msg)
	}
	before, _ := os.ReadDir(filepath.Join(out, "checkpoints"))
	for _, args := range [][]string{
		append(recipeArgs(out, "train.max_steps=4", "train.batch_size=4"), "--resume", "auto"),
		recipeArgs(out, "train.max_steps=4"),
	} {
		code, msg := runMose(t, append([]string{"train"}, args...)...)
		if code != 2 {
			t.Errorf("exit %d, want 2: %s", code, msg)
		}
		after, _ := os.ReadDir(filepath.Join(out, "checkpoints"))
		if len(after) != len(before) {
			t.Errorf("refused run changed the checkpoints")
		}
	}
}

// startTrain starts the mose binary; its logs go to a file under out.
func startTrain(t *testing.T, out string, args ...string) *exec.Cmd {
	t.Helper()
	if e2e.err != nil {
		t.Skipf("mose binary did not build: %v", e2e.err)
	}
	os.MkdirAll(out, 0o755)
	logf, err := os.OpenFile(filepath.Join(out+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(e2e.bin, append([]string{"train", "--no-progress"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func adapterOf(t *testing.T, ck string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(ck, "adapter.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, n := range f.Names() {
		b, err := f.Read(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n], _ = safetensors.BytesToFloat32s(b)
	}
	return out
}

// completeCheckpoints checks every step-* directory is complete and loadable.
func completeCheckpoints(t *testing.T, root string) []string {
	t.Helper()
	entries, _ := os.ReadDir(root)
	var steps []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "step-") {
			continue
		}
		dir := filepath.Join(root, e.Name())
		var st checkpoint.State
		b, err := os.ReadFile(filepath.Join(dir, "trainer_state.json"))
		if err != nil || json.Unmarshal(b, &st) != nil {
			t.Fatalf("%s is not complete: %v", dir, err)
		}
		for _, f := range []string{"adapter.safetensors", "optimizer.safetensors"} {
			sf, err := safetensors.Open(filepath.Join(dir, f))
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			sf.Close()
		}
		steps = append(steps, e.Name())
	}
	return steps
}

// TestKillAndResume kills training with SIGKILL at random moments — each
// round waits for the run to write a new checkpoint, then kills it within the
// next 0–150 ms, while it writes more (a checkpoint is saved every step) —
// resumes with --resume auto each time, and checks that every checkpoint left
// behind is complete and that the run ends exactly where an uninterrupted
// run does: same adapters, same loss at every step.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a process ten times")
	}
	straight := filepath.Join(t.TempDir(), "straight")
	cmd := startTrain(t, straight, recipeArgs(straight, "train.max_steps=40", "train.save_every=20")...)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("straight run: %v", err)
	}
	want := adapterOf(t, filepath.Join(straight, "checkpoints", "step-0000040"))

	killed := filepath.Join(t.TempDir(), "killed")
	ckRoot := filepath.Join(killed, "checkpoints")
	args := append(recipeArgs(killed, "train.max_steps=40", "train.save_every=1", "train.keep_last=3"), "--resume", "auto")
	final := filepath.Join(ckRoot, "step-0000040")
	newest := func() string { // while the run is alive: names only, rotation renames dirs away
		entries, _ := os.ReadDir(ckRoot)
		last := ""
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "step-") && e.Name() > last {
				last = e.Name()
			}
		}
		return last
	}
	rng := rand.New(rand.NewPCG(7, 7))
	kills := 0
	for round := 0; ; round++ {
		if round == 200 {
			t.Fatal("no end after 200 rounds")
		}
		before := newest()
		cmd := startTrain(t, killed, args...)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		finished := false
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				finished = true
				break wait
			case <-time.After(5 * time.Millisecond):
				if _, err := os.Stat(final); err == nil {
					continue // the last step is saved: let the run finish
				}
				if newest() != before {
					time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
					cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					completeCheckpoints(t, ckRoot)
					break wait
				}
			}
		}
		if finished {
			break
		}
	}
	got := adapterOf(t, final)
	var worst float64
	for n, v := range want {
		for i := range v {
			worst = math.Max(worst, math.Abs(float64(v[i]-got[n][i])))
		}
	}
	t.Logf("%d SIGKILLs; max |adapter(killed+resumed) - adapter(straight)| = %.3g", kills, worst)
	if worst > 1e-6 {
		t.Errorf("resumed adapters differ by %.3g", worst)
	}
	if kills < 10 {
		t.Errorf("the test killed the run %d times, want at least 10", kills)
	}
	wantLoss, gotLoss := lossesOf(t, straight), lossesOf(t, killed)
	if len(gotLoss) != 40 || len(wantLoss) != 40 {
		t.Fatalf("loss traces have %d and %d steps, want 40", len(gotLoss), len(wantLoss))
	}
	for step, l := range wantLoss {
		if gotLoss[step] != l {
			t.Errorf("step %d: loss %v (killed and resumed), %v (straight)", step, gotLoss[step], l)
		}
	}
}

// lossesOf reads the per-step emotion loss of a run's metrics.jsonl.
func lossesOf(t *testing.T, dir string) map[int]float64 {
	t.Helper()
	recs, err := plots.ReadRecords(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]float64{}
	for _, r := range recs {
		if !r.IsEval() {
			out[r.Step] = r.EmotionLoss
		}
	}
	return out
}

// TestSIGTERM: SIGTERM ends the run with a checkpoint and exit 143 within 30 s.
func TestSIGTERM(t *testing.T) {
	out := filepath.Join(t.TempDir(), "run")
	cmd := startTrain(t, out, recipeArgs(out, "train.max_steps=100000", "train.save_every=0")...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, _ := os.ReadFile(filepath.Join(out, "metrics.jsonl")); bytes.Count(b, []byte("\n")) >= 3 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("training did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	took := time.Since(start)
	code := cmd.ProcessState.ExitCode()
	if code != 143 {
		t.Errorf("exit %d (%v), want 143", code, err)
	}
	if took > 30*time.Second {
		t.Errorf("took %v to stop", took)
	}
	steps := completeCheckpoints(t, filepath.Join(out, "checkpoints"))
	if len(steps) != 1 {
		t.Errorf("checkpoints after SIGTERM: %v", steps)
	}
	log, _ := os.ReadFile(out + ".log")
	if !strings.Contains(string(log), "--resume auto") {
		t.Errorf("the log does not give the resume command:\n%s", log)
	}
	t.Logf("stopped %v after SIGTERM with %v", took.Round(time.Millisecond), steps)
}
