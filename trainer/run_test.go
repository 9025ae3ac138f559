package trainer

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/plots"
)

// adapterValues reads every tensor of a checkpoint's adapter file.
func adapterValues(t *testing.T, ck string) map[string][]float32 {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(ck, checkpoint.AdapterFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]float32{}
	for _, name := range f.Names() {
		b, err := f.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		if out[name], err = safetensors.BytesToFloat32s(b); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func lossTrace(t *testing.T, dir string) map[int]float64 {
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

func maxDiff(t *testing.T, a, b map[string][]float32) float64 {
	t.Helper()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("adapter files hold %d and %d tensors", len(a), len(b))
	}
	var worst float64
	for name, va := range a {
		vb, ok := b[name]
		if !ok || len(va) != len(vb) {
			t.Fatalf("tensor %s missing or resized", name)
		}
		for i := range va {
			worst = math.Max(worst, math.Abs(float64(va[i]-vb[i])))
		}
	}
	return worst
}

// TestExactResume: N steps straight, and k steps + interrupt + resume to N,
// give the same adapters and the same loss trace — with dropout, gate noise,
// gradient accumulation, trained projectors and dynamic modality weights on.
func TestExactResume(t *testing.T) {
	for _, extra := range [][]string{
		{"adapters.modality_weights=contribution"},
		{"train.grad_accum=2", "adapters.method=lora"},
	} {
		t.Run(strings.Join(extra, ","), func(t *testing.T) {
			straight := fixture.Recipe(t, extra...)
			res, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()})
			if err != nil {
				t.Fatal(err)
			}
			want, wantLoss := adapterValues(t, res.Checkpoint), lossTrace(t, straight.Run.OutputDir)

			split := fixture.Recipe(t, extra...)
			ctx, cancel := context.WithCancel(context.Background())
			_, err = Run(ctx, split, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
				if step == 5 {
					cancel()
				}
			}})
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("interrupted run: %v", err)
			}
			if _, err := os.Stat(filepath.Join(split.Run.OutputDir, "checkpoints", checkpoint.StepDir(5))); err != nil {
				t.Fatalf("no checkpoint at the interruption: %v", err)
			}
			res, err = Run(context.Background(), split, Options{Log: testfix.QuietLog(), Resume: "auto"})
			if err != nil {
				t.Fatal(err)
			}
			if res.Steps != 12 {
				t.Fatalf("resumed run ended at step %d", res.Steps)
			}
			if d := maxDiff(t, want, adapterValues(t, res.Checkpoint)); d > 1e-6 {
				t.Errorf("adapters differ by %.3g after resume", d)
			}
			got := lossTrace(t, split.Run.OutputDir)
			if len(got) != len(wantLoss) {
				t.Fatalf("loss trace has %d steps, want %d", len(got), len(wantLoss))
			}
			for step, l := range wantLoss {
				if got[step] != l {
					t.Errorf("step %d: loss %v after resume, %v straight", step, got[step], l)
				}
			}
		})
	}
}

// TestNonFiniteGuard: a NaN step is skipped and counted; max_nonfinite in a
// row abort with a checkpoint of the last good state.
func TestNonFiniteGuard(t *testing.T) {
	constant := []string{"train.schedule=constant", "train.warmup_steps=0", "adapters.dropout=0", "adapters.gate.noise=0"}
	cfg := fixture.Recipe(t, constant...)
	res, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), NonFiniteAt: func(step int) bool { return step == 3 }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 || res.Steps != 12 {
		t.Errorf("skipped %d of %d steps, want 1 of 12", res.Skipped, res.Steps)
	}

	cfg = fixture.Recipe(t, append(constant, "train.max_nonfinite=3")...)
	res, err = Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), NonFiniteAt: func(step int) bool { return step >= 4 }})
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("want ErrNonFinite, got %v", err)
	}
	ck := filepath.Join(cfg.Run.OutputDir, "checkpoints", checkpoint.StepDir(7))
	st, err := checkpoint.Read(ck)
	if err != nil {
		t.Fatalf("no checkpoint after the abort: %v", err)
	}
	if st.SkippedSteps != 3 || st.OptimizerSteps != 4 {
		t.Errorf("state: %d skipped, %d updates; want 3 and 4", st.SkippedSteps, st.OptimizerSteps)
	}
	// The saved adapters are those after the 4 good steps.
	good := fixture.Recipe(t, append(constant, "train.max_steps=4")...)
	res, err = Run(context.Background(), good, Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(t, adapterValues(t, res.Checkpoint), adapterValues(t, ck)); d != 0 {
		t.Errorf("aborted checkpoint differs from the last good state by %.3g", d)
	}
	for name, v := range adapterValues(t, ck) {
		for _, x := range v {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("non-finite value saved in %s", name)
			}
		}
	}
}

// rssKiB reads the resident set size after a GC.
func rssKiB(t *testing.T) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			n, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return n
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestMemoryFlat: 2,000 steps keep RSS within 2% between step 200 and the end,
// and the live tensor count flat.
func TestMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("2,000 steps")
	}
	cfg := fixture.Recipe(t, "train.max_steps=2000", "train.batch_size=4", "train.log_every=100",
		"adapters.modality_weights=contribution")
	var rss200, live200, rssEnd, liveEnd int64
	_, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
		switch step {
		case 200:
			rss200, live200 = rssKiB(t), torch.Live()
		case 2000:
			rssEnd, liveEnd = rssKiB(t), torch.Live()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	growth := float64(rssEnd-rss200) / float64(rss200)
	t.Logf("RSS step 200: %d KiB, step 2000: %d KiB (%+.2f%%); live tensors %d -> %d", rss200, rssEnd, 100*growth, live200, liveEnd)
	if growth > 0.02 {
		t.Errorf("RSS grew %.2f%% from step 200 to 2000", 100*growth)
	}
	if liveEnd != live200 {
		t.Errorf("live tensors %d at step 200, %d at the end", live200, liveEnd)
	}
}

// TestMemoryFlatWithEvals: evaluations with a large working set (the whole
// eval set in one batch) do not step RSS up: RSS after four evaluations is
// within 10% of RSS before the first one (without returning freed memory to
// the OS after each evaluation it grows several-fold), and the live tensor
// count is the same.
func TestMemoryFlatWithEvals(t *testing.T) {
	if testing.Short() {
		t.Skip("200 steps and 5 evaluations")
	}
	cfg := fixture.Recipe(t, "train.max_steps=200", "train.batch_size=4", "train.log_every=100", "train.eval_every=40",
		"eval.batch_size=36", "adapters.modality_weights=contribution")
	var rssBefore, liveBefore, rssAfter, liveAfter int64
	var trace []int64
	_, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
		if step%40 == 1 && step > 40 {
			trace = append(trace, rssKiB(t))
		}
		switch step {
		case 39:
			rssBefore, liveBefore = rssKiB(t), torch.Live()
		case 161:
			rssAfter, liveAfter = rssKiB(t), torch.Live()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	growth := float64(rssAfter-rssBefore) / float64(rssBefore)
	t.Logf("RSS before the first eval: %d KiB, after four: %d KiB (%+.1f%%), after each: %v KiB; live tensors %d -> %d",
		rssBefore, rssAfter, 100*growth, trace, liveBefore, liveAfter)
	if growth > 0.10 {
		t.Errorf("RSS grew %.1f%% across evaluations", 100*growth)
	}
	if liveAfter != liveBefore {
		t.Errorf("live tensors %d before the evaluations, %d after", liveBefore, liveAfter)
	}
}

// The resume hint repeats the command that started the run, --set flags
// included, with --resume auto in place of any --resume.
func TestResumeCommand(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"/usr/bin/mose", "train", "--recipe", "r.yaml", "--set", "train.lr=1e-3", "--set", "adapters.targets=[q_proj, v_proj]"},
			"mose train --recipe r.yaml --set train.lr=1e-3 --set 'adapters.targets=[q_proj, v_proj]' --resume auto"},
		{[]string{"mose", "train", "--recipe=demo-tiny", "--resume", "runs/x/checkpoints/step-0000010", "--set", "run.name=it's"},
			`mose train --recipe=demo-tiny --set 'run.name=it'\''s' --resume auto`},
		{[]string{"mose", "train", "--resume=auto", "--recipe", "demo-tiny"}, "mose train --recipe demo-tiny --resume auto"},
	}
	for _, c := range cases {
		if got := resumeCommand(c.args); got != c.want {
			t.Errorf("resumeCommand(%q) = %s, want %s", c.args, got, c.want)
		}
	}
	if got := resumeCommand(nil); !strings.Contains(got, "--resume auto") {
		t.Errorf("generic hint %q", got)
	}
}
