package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/plots"
)

// evalLines counts the eval records of a run's metrics.jsonl by step.
func evalLines(t *testing.T, dir string) map[int]int {
	t.Helper()
	recs, err := plots.ReadRecords(filepath.Join(dir, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, r := range recs {
		if r.IsEval() {
			out[r.Step]++
		}
	}
	return out
}

// TestBranchResume: --resume PATH to an older checkpoint moves the newer
// checkpoints aside into checkpoints/abandoned-*/ (nothing deleted), and
// rotation, `latest` and --resume auto follow the new branch.
func TestBranchResume(t *testing.T) {
	cfg := fixture.Recipe(t, "train.max_steps=8", "train.save_every=2", "train.keep_last=2")
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(cfg.Run.OutputDir, "checkpoints")
	old6, old8 := adapterValues(t, filepath.Join(root, checkpoint.StepDir(6))), adapterValues(t, filepath.Join(root, checkpoint.StepDir(8)))
	// Branch from step 6 with another learning rate (allowed explicitly).
	branch := fixture.Recipe(t, "train.max_steps=8", "train.save_every=2", "train.keep_last=2", "train.lr=5e-3")
	branch.Run.OutputDir = cfg.Run.OutputDir
	res, err := Run(context.Background(), branch, Options{Log: testfix.QuietLog(), Resume: filepath.Join(root, checkpoint.StepDir(6)), AllowRecipeChange: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 8 {
		t.Fatalf("branch ended at %d", res.Steps)
	}
	aside, _ := filepath.Glob(filepath.Join(root, "abandoned-*"))
	if len(aside) != 1 {
		t.Fatalf("abandoned folders: %v", aside)
	}
	if d := maxDiff(t, old8, adapterValues(t, filepath.Join(aside[0], checkpoint.StepDir(8)))); d != 0 {
		t.Errorf("the abandoned step 8 was changed (%.3g)", d)
	}
	if d := maxDiff(t, old8, adapterValues(t, filepath.Join(root, checkpoint.StepDir(8)))); d == 0 {
		t.Errorf("the new branch's step 8 equals the abandoned one")
	}
	if d := maxDiff(t, old6, adapterValues(t, filepath.Join(root, checkpoint.StepDir(6)))); d != 0 {
		t.Errorf("the branch point changed")
	}
	if steps, _ := checkpoint.List(root); !equalInts(steps, []int{6, 8}) {
		t.Errorf("checkpoints after the branch: %v, want [6 8]", steps)
	}
	if b, _ := os.ReadFile(filepath.Join(root, checkpoint.LatestFile)); strings.TrimSpace(string(b)) != checkpoint.StepDir(8) {
		t.Errorf("latest = %q", b)
	}
	if got, err := checkpoint.Find(root, "auto"); err != nil || got != filepath.Join(root, checkpoint.StepDir(8)) {
		t.Errorf("--resume auto after the branch: %q, %v", got, err)
	}
	st6, _ := checkpoint.Decode(filepath.Join(root, checkpoint.StepDir(6)))
	st8, _ := checkpoint.Decode(filepath.Join(root, checkpoint.StepDir(8)))
	if st6.Lineage != st8.Lineage {
		t.Errorf("the branch has another lineage than its branch point: %q vs %q", st8.Lineage, st6.Lineage)
	}
}

// TestNoProgress: a run whose steps are skipped, or whose updates would make
// the weights non-finite, fails with ErrNonFinite and never saves NaN.
func TestNoProgress(t *testing.T) {
	cases := []struct {
		name  string
		sets  []string
		nanAt func(int) bool
	}{
		{"all steps NaN, fewer than max_nonfinite", []string{"train.max_steps=4"}, func(int) bool { return true }},
		{"most steps NaN", []string{"train.max_steps=6", "train.max_nonfinite=3"}, func(s int) bool { return s%3 != 0 }},
		{"lr 1e30", []string{"train.max_steps=8", "train.lr=1e30", "train.warmup_steps=0", "train.schedule=constant"}, nil},
		{"lr 1e38: every update overflows", []string{"train.max_steps=8", "train.lr=1e38", "train.warmup_steps=0", "train.schedule=constant"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := fixture.Recipe(t, c.sets...)
			_, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), NonFiniteAt: c.nanAt})
			if !errors.Is(err, ErrNonFinite) {
				t.Fatalf("want ErrNonFinite, got %v", err)
			}
			root := filepath.Join(cfg.Run.OutputDir, "checkpoints")
			steps, _ := checkpoint.List(root)
			if len(steps) == 0 {
				t.Fatal("no checkpoint of the last good state")
			}
			for _, s := range steps {
				if _, err := checkpoint.Read(filepath.Join(root, checkpoint.StepDir(s))); err != nil {
					t.Errorf("saved checkpoint fails validation: %v", err)
				}
			}
		})
	}
}

// TestSaveBeforeEval: a checkpoint due at an eval step is written before the
// evaluation; a cancellation during the evaluation ends the run with that
// state saved (ErrInterrupted, not an error), the resume runs the
// evaluation again (one eval line per step) and ends where a straight run
// ends.
func TestSaveBeforeEval(t *testing.T) {
	sets := []string{"train.max_steps=8", "train.eval_every=4", "train.save_every=0", "train.keep_best_by=all.accuracy"}
	straight := fixture.Recipe(t, sets...)
	res, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	want := adapterValues(t, res.Checkpoint)
	wantSt, _ := checkpoint.Decode(res.Checkpoint)

	cfg := fixture.Recipe(t, sets...)
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Run(ctx, cfg, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
		if step == 4 {
			cancel() // the evaluation at step 4 sees it
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled during eval: want ErrInterrupted, got %v", err)
	}
	ck := filepath.Join(cfg.Run.OutputDir, "checkpoints", checkpoint.StepDir(4))
	st, err := checkpoint.Read(ck)
	if err != nil {
		t.Fatalf("no valid checkpoint at the interrupted eval step: %v", err)
	}
	if st.LastEval != 0 {
		t.Errorf("the interrupted evaluation is counted: last_eval_step %d", st.LastEval)
	}
	res, err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, want, adapterValues(t, res.Checkpoint)); d > 1e-6 {
		t.Errorf("adapters differ by %.3g", d)
	}
	got, _ := checkpoint.Decode(res.Checkpoint)
	if got.BestStep != wantSt.BestStep || *got.BestMetric != *wantSt.BestMetric || got.LastEval != 8 {
		t.Errorf("best step %d metric %v last eval %d, straight: %d %v %d", got.BestStep, *got.BestMetric, got.LastEval,
			wantSt.BestStep, *wantSt.BestMetric, wantSt.LastEval)
	}
	if ev := evalLines(t, cfg.Run.OutputDir); ev[4] != 1 || ev[8] != 1 || len(ev) != 2 {
		t.Errorf("eval lines by step: %v, want one at 4 and one at 8", ev)
	}
	// eval.json says which step and checkpoint it evaluated.
	var ej struct {
		Step       int    `json:"step"`
		Checkpoint string `json:"checkpoint"`
	}
	if b, err := os.ReadFile(filepath.Join(cfg.Run.OutputDir, "eval.json")); err != nil || json.Unmarshal(b, &ej) != nil ||
		ej.Step != 8 || filepath.Base(ej.Checkpoint) != checkpoint.StepDir(8) {
		t.Errorf("eval.json: step %d checkpoint %q (%v), want step 8 and its checkpoint", ej.Step, ej.Checkpoint, err)
	}
	// Resuming from the final checkpoint repeats nothing.
	before, _ := os.ReadFile(filepath.Join(cfg.Run.OutputDir, "metrics.jsonl"))
	res, err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(cfg.Run.OutputDir, "metrics.jsonl"))
	if string(before) != string(after) || res.Eval != nil {
		t.Errorf("resuming from the final checkpoint changed metrics.jsonl (%d -> %d bytes) or re-evaluated", len(before), len(after))
	}
	// A final evaluation counted as done whose eval.json is gone runs again.
	if err := os.Remove(filepath.Join(cfg.Run.OutputDir, "eval.json")); err != nil {
		t.Fatal(err)
	}
	res, err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"})
	if err != nil || res.Eval == nil || res.Eval.Step != 8 {
		t.Fatalf("resume without eval.json: %v, eval %v", err, res)
	}
	if _, err := os.Stat(filepath.Join(cfg.Run.OutputDir, "eval.json")); err != nil {
		t.Errorf("eval.json not written again: %v", err)
	}
}

// TestLogIntervalResume: with log_every > 1, a resume between two log lines
// writes the same next line.
func TestLogIntervalResume(t *testing.T) {
	sets := []string{"train.log_every=4"}
	straight := fixture.Recipe(t, sets...)
	if _, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	want := lossTrace(t, straight.Run.OutputDir)
	cfg := fixture.Recipe(t, sets...)
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := Run(ctx, cfg, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
		if step == 6 {
			cancel()
		}
	}}); !errors.Is(err, ErrInterrupted) {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"}); err != nil {
		t.Fatal(err)
	}
	got := lossTrace(t, cfg.Run.OutputDir)
	if len(got) != 3 || len(want) != 3 {
		t.Fatalf("log lines: %v vs %v", got, want)
	}
	for step, l := range want {
		if got[step] != l {
			t.Errorf("step %d: loss %v after resume, %v straight", step, got[step], l)
		}
	}
}

// TestRunLock: a second train on a locked run directory fails at once with
// ErrBusy naming the holder's PID; the lock is released when a run ends.
func TestRunLock(t *testing.T) {
	cfg := fixture.Recipe(t, "train.max_steps=2")
	l, err := checkpoint.Lock(cfg.Run.OutputDir, true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog()})
	if !errors.Is(err, checkpoint.ErrBusy) || !strings.Contains(err.Error(), fmt.Sprintf("PID %d", os.Getpid())) {
		t.Errorf("want ErrBusy naming PID %d, got %v", os.Getpid(), err)
	}
	if entries, _ := os.ReadDir(cfg.Run.OutputDir); len(entries) != 1 {
		t.Errorf("the refused run wrote into output_dir: %d entries", len(entries))
	}
	l.Close()
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatalf("after the lock is released: %v", err)
	}
	l, err = checkpoint.Lock(cfg.Run.OutputDir, false) // released at the end of Run
	if err != nil || l == nil {
		t.Fatalf("lock after the run: %v %v", l, err)
	}
	l.Close()
}

// TestCleanStale: the temporary files and directories a killed run leaves
// are removed at the next start; look-alikes that mose did not create stay.
func TestCleanStale(t *testing.T) {
	dir := t.TempDir()
	out, model := filepath.Join(dir, "run"), filepath.Join(dir, "model")
	root := filepath.Join(out, "checkpoints")
	ck := filepath.Join(root, checkpoint.StepDir(3))
	os.MkdirAll(ck, 0o755)
	gone := []string{
		filepath.Join(root, ".latest.tmp-12345"),
		filepath.Join(out, ".metrics.jsonl.tmp-99"),
		filepath.Join(out, ".loss.png.tmp-7"),
		filepath.Join(ck, ".trainer_state.json.tmp-4242"),
		filepath.Join(root, ".tmp-step-0000004-8848"),
		filepath.Join(root, ".tmp-removed-step-0000001"),
		model + ".tmp-999999999",
	}
	kept := []string{
		filepath.Join(root, ".latest.tmp-abc"),
		filepath.Join(root, "latest.tmp-1"),
		filepath.Join(out, ".notes.txt.tmp-12"),
		filepath.Join(out, "my.tmp-1"),
		filepath.Join(ck, ".eval.json.tmp-5"), // a concurrent mose eval's
		filepath.Join(root, ".tmp-mine"),
		model + ".tmp-" + fmt.Sprint(os.Getpid()),
		model + ".tmp-12x",
		filepath.Join(dir, "othermodel.tmp-999999999"),
	}
	for _, p := range append(append([]string{}, gone...), kept...) {
		if strings.Contains(filepath.Base(p), ".tmp-step") || strings.Contains(filepath.Base(p), ".tmp-removed") || strings.Contains(p, "model.tmp") {
			os.MkdirAll(p, 0o755)
		} else {
			os.WriteFile(p, []byte("x"), 0o644)
		}
	}
	checkpoint.CleanStale(out, root, model, testfix.QuietLog())
	for _, p := range gone {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s was removed", p)
		}
	}
}

// TestThreadsCloseNotExact measures what run.threads does to the bits: the
// same 24 steps at 1 and 2 libtorch threads give close, not identical,
// adapters (reductions split differently). The README says so.
func TestThreadsCloseNotExact(t *testing.T) {
	if testing.Short() {
		t.Skip("two 24-step runs")
	}
	one := fixture.Recipe(t, "train.max_steps=24", "train.batch_size=4", "run.threads=1")
	two := fixture.Recipe(t, "train.max_steps=24", "train.batch_size=4", "run.threads=2")
	r1, err := Run(context.Background(), one, Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Run(context.Background(), two, Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	d := maxDiff(t, adapterValues(t, r1.Checkpoint), adapterValues(t, r2.Checkpoint))
	t.Logf("max |adapter(1 thread) - adapter(2 threads)| after 24 steps: %.3g", d)
	if d > 1e-2 {
		t.Errorf("thread counts give far-apart adapters (%.3g): more than reduction order", d)
	}
}

// A finished run extends by train.max_steps without --allow-recipe-change;
// `best` names the best checkpoint; a resume on a relabelled data.train is
// refused by name.
func TestResumeExtendRelabel(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "train.jsonl")
	b, err := os.ReadFile(fixture.Train)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run")
	sets := []string{"data.train=" + manifest, "data.root=" + filepath.Dir(fixture.Train), "run.output_dir=" + out,
		"train.eval_every=3", "train.save_every=3", "train.keep_best_by=all.accuracy"}
	cfg := fixture.Recipe(t, append(sets, "train.max_steps=6")...)
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(out, "checkpoints")
	best, err := os.ReadFile(filepath.Join(root, checkpoint.BestFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := checkpoint.Decode(filepath.Join(root, strings.TrimSpace(string(best))))
	if err != nil || st.BestStep != st.Step {
		t.Errorf("best names %q: state %+v, %v", best, st, err)
	}
	cfg = fixture.Recipe(t, append(sets, "train.max_steps=8")...)
	res, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"})
	if err != nil || res.Steps != 8 {
		t.Fatalf("extending the finished run: %v (steps %v)", err, res)
	}
	relabelled := strings.Replace(string(b), `"label":"happy"`, `"label":"sad"`, 1)
	if relabelled == string(b) {
		t.Fatal("no label to change in the fixture")
	}
	if err := os.WriteFile(manifest, []byte(relabelled), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = fixture.Recipe(t, append(sets, "train.max_steps=10")...)
	_, err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto", AllowRecipeChange: false})
	if !errors.Is(err, checkpoint.ErrResume) || !strings.Contains(err.Error(), "data.train") {
		t.Errorf("resume on a relabelled data.train: want ErrResume naming data.train, got %v", err)
	}
}
