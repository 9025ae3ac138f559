package trainer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/tfevents"
	"github.com/mose-llm/mose/plots"
)

var fixedTime = time.Unix(1800000000, 0)

type tbPoint struct {
	step  int64
	value float32
}

// tbScalars reads a run's event files the way TensorBoard does (files in
// name order) into tag -> points.
func tbScalars(t *testing.T, out string) (map[string][]tbPoint, []string) {
	t.Helper()
	files, err := tfevents.Files(filepath.Join(out, tensorBoardDir))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]tbPoint{}
	for _, f := range files {
		evs, err := tfevents.ReadFile(f)
		if err != nil && !errors.Is(err, tfevents.ErrTorn) { // TensorBoard too reads up to a torn end
			t.Fatal(err)
		}
		if len(evs) == 0 || evs[0].FileVersion != tfevents.FileVersion {
			t.Fatalf("%s does not start with the file_version event", f)
		}
		for _, e := range evs {
			for _, v := range e.Values {
				got[v.Tag] = append(got[v.Tag], tbPoint{e.Step, v.Scalar})
			}
		}
	}
	return got, files
}

// jsonlScalars maps metrics.jsonl to the points TensorBoard should show.
func jsonlScalars(t *testing.T, out string) map[string][]tbPoint {
	t.Helper()
	recs, err := plots.ReadRecords(filepath.Join(out, "metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]tbPoint{}
	for _, r := range recs {
		for _, v := range tensorBoardValues(r) {
			want[v.Tag] = append(want[v.Tag], tbPoint{int64(r.Step), v.Scalar})
		}
	}
	return want
}

// checkTB compares a run's events with its metrics.jsonl: same tags, one
// point per step, increasing steps, same values.
func checkTB(t *testing.T, out string) map[string][]tbPoint {
	t.Helper()
	got, _ := tbScalars(t, out)
	want := jsonlScalars(t, out)
	if len(got) != len(want) {
		t.Errorf("%d tags, metrics.jsonl gives %d", len(got), len(want))
	}
	for tag, w := range want {
		g := got[tag]
		if !slices.Equal(g, w) {
			t.Errorf("%s: events %v, metrics.jsonl %v", tag, g, w)
		}
		for i := 1; i < len(g); i++ {
			if g[i].step <= g[i-1].step {
				t.Errorf("%s: step %d after %d", tag, g[i].step, g[i-1].step)
			}
		}
	}
	return got
}

// TestTensorBoardResume: a MoSE run with evaluations is killed after step 7
// with its last checkpoint at step 5 (the step-7 checkpoint never written, an
// event record torn in half), then resumed: the train and eval records of
// steps 6 and 7 are redone. The event files hold exactly the
// metrics.jsonl scalars, one point per step, and the losses of a straight
// run. Then tensorboard's own EventAccumulator reads them (skipped without
// the Python venv).
func TestTensorBoardResume(t *testing.T) {
	sets := []string{"train.max_steps=9", "train.eval_every=3", "train.save_every=5", "adapters.modality_weights=contribution"}
	straight := fixture.Recipe(t, sets...)
	if _, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	want := checkTB(t, straight.Run.OutputDir)
	for _, tag := range []string{"train/emotion_loss", "train/lb_loss", "train/z_loss", "train/total_loss", "train/lr",
		"train/grad_norm", "train/tokens_per_s", "train/step_time_s", "train/epoch", "train/skipped",
		"modality_weights/visual", "modality_weights/nonvisual", "router/visual/entropy", "router/visual/load/0",
		"router/visual/prob/2", "router/nonvisual/z", "router/nonvisual/balance", "eval/all/accuracy",
		"eval/video-aligned/uar", "eval/audio-aligned/weighted_f1", "eval/consistent/macro_f1", "eval/all/conflict_gap"} {
		if len(want[tag]) == 0 {
			t.Errorf("no %s", tag)
		}
	}
	if n := len(want["train/emotion_loss"]); n != 9 {
		t.Errorf("%d train/emotion_loss points, want 9", n)
	}
	if got := want["eval/all/accuracy"]; len(got) != 3 || got[0].step != 3 || got[2].step != 9 {
		t.Errorf("eval/all/accuracy at %v, want steps 3, 6, 9", got)
	}

	split := fixture.Recipe(t, sets...)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Run(ctx, split, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
		if step == 7 {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	out := split.Run.OutputDir
	if err := os.RemoveAll(filepath.Join(out, "checkpoints", checkpoint.StepDir(7))); err != nil {
		t.Fatal(err)
	}
	_, files := tbScalars(t, out)
	torn := tfevents.AppendRecord(nil, (&tfevents.Event{Step: 8, Values: []tfevents.Value{{Tag: "train/lr", Scalar: 1}}}).Marshal())
	f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn[:len(torn)/2])
	f.Close()

	if _, err := Run(context.Background(), split, Options{Log: testfix.QuietLog(), Resume: "auto"}); err != nil {
		t.Fatal(err)
	}
	got := checkTB(t, out)
	if _, files = tbScalars(t, out); len(files) != 2 {
		t.Errorf("event files %v, want the first run's and the resumed run's", files)
	}
	for _, tag := range []string{"train/emotion_loss", "train/total_loss", "train/lr", "train/grad_norm",
		"modality_weights/visual", "router/visual/entropy", "eval/all/accuracy"} {
		if !slices.Equal(got[tag], want[tag]) {
			t.Errorf("%s after resume %v, straight %v", tag, got[tag], want[tag])
		}
	}

	t.Run("EventAccumulator", func(t *testing.T) {
		py := testfix.RefPython(t)
		script := filepath.Join("..", "scripts", "checks", "check_tensorboard.py")
		if b, err := exec.Command(py, script, out).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", script, out, err, b)
		} else {
			t.Logf("%s", b)
		}
		// The check can fail: a copy of the events of steps <= 5 in a later
		// file gives duplicate steps.
		bad := filepath.Join(t.TempDir(), "run")
		copyRun(t, out, bad)
		first, _ := tfevents.Files(filepath.Join(bad, tensorBoardDir))
		b, _ := os.ReadFile(first[0])
		os.WriteFile(filepath.Join(bad, tensorBoardDir, "events.out.tfevents.9999999999.dup"), b, 0o644)
		if b, err := exec.Command(py, script, bad).CombinedOutput(); err == nil {
			t.Errorf("check_tensorboard.py accepted duplicated events:\n%s", b)
		}
	})
}

// TestTensorBoardOff: run.tensorboard=false writes no event file, and cuts
// an old one on resume.
func TestTensorBoardOff(t *testing.T) {
	cfg := fixture.Recipe(t, "run.tensorboard=false", "train.max_steps=3")
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Run.OutputDir, tensorBoardDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("tensorboard dir with run.tensorboard=false: %v", err)
	}
	dir := filepath.Join(cfg.Run.OutputDir, tensorBoardDir)
	w, err := tfevents.Create(dir, 0, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	for s := int64(1); s <= 5; s++ {
		w.Write(s, fixedTime, []tfevents.Value{{Tag: "train/lr", Scalar: 1}})
	}
	w.Close()
	if _, err := openTensorBoard(cfg.Run.OutputDir, false, 3); err != nil {
		t.Fatal(err)
	}
	evs, err := tfevents.ReadFile(w.Path())
	if err != nil || evs[len(evs)-1].Step != 3 {
		t.Errorf("after a resume at 3 with TensorBoard off: last step %d, %v", evs[len(evs)-1].Step, err)
	}
}

func copyRun(t *testing.T, from, to string) {
	t.Helper()
	for _, rel := range []string{"metrics.jsonl", tensorBoardDir} {
		src := filepath.Join(from, rel)
		st, err := os.Stat(src)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() {
			b, _ := os.ReadFile(src)
			os.MkdirAll(to, 0o755)
			if err := os.WriteFile(filepath.Join(to, rel), b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		os.MkdirAll(filepath.Join(to, rel), 0o755)
		ents, _ := os.ReadDir(src)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(src, e.Name()))
			if err := os.WriteFile(filepath.Join(to, rel, e.Name()), b, 0o644); err != nil {
				t.Fatal(fmt.Errorf("copy: %w", err))
			}
		}
	}
}

// The tag mapping, record kind by record kind.
func TestTensorBoardValues(t *testing.T) {
	tags := func(rec plots.Record) []string {
		var out []string
		for _, v := range tensorBoardValues(rec) {
			out = append(out, v.Tag)
		}
		return out
	}
	base := []string{"train/emotion_loss", "train/lb_loss", "train/z_loss", "train/total_loss", "train/lr",
		"train/grad_norm", "train/tokens_per_s"}
	for _, tc := range []struct {
		name string
		rec  plots.Record
		want []string
	}{
		{"lora", plots.Record{Kind: plots.KindTrain, Step: 3, EmotionLoss: 1, LR: 1e-4},
			append(slices.Clone(base), "train/skipped", "train/epoch")},
		{"mose", plots.Record{Kind: plots.KindTrain, Step: 3, EmotionLoss: 1, StepTime: 0.1,
			ModalityWeights: &plots.ModalityWeights{Visual: 1.2, NonVisual: 0.8},
			Router: map[string]plots.RouterStats{
				"visual":    {Load: []float64{0.5, 0.5}, Prob: []float64{0.4, 0.6}, Entropy: 0.6, Z: 2, Balance: 1, Tokens: 32},
				"nonvisual": {Load: []float64{1}, Prob: []float64{1}}},
		}, append(slices.Clone(base), "train/step_time_s", "train/skipped", "train/epoch",
			"modality_weights/visual", "modality_weights/nonvisual",
			"router/nonvisual/entropy", "router/nonvisual/z", "router/nonvisual/balance",
			"router/nonvisual/load/0", "router/nonvisual/prob/0",
			"router/visual/entropy", "router/visual/z", "router/visual/balance", "router/visual/tokens",
			"router/visual/load/0", "router/visual/load/1", "router/visual/prob/0", "router/visual/prob/1")},
		{"eval", plots.Record{Kind: plots.KindEval, Step: 4, Epoch: 0.5, ModalityWeights: &plots.ModalityWeights{},
			Eval: map[string]float64{"all.accuracy": 0.5, "video-aligned.uar": 0.25, "all.conflict_gap": -0.1}},
			[]string{"eval/all/accuracy", "eval/all/conflict_gap", "eval/video-aligned/uar"}},
		{"old eval line without kind", plots.Record{Step: 4, Eval: map[string]float64{"all.accuracy": 0.5}},
			[]string{"eval/all/accuracy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tags(tc.rec); !slices.Equal(got, tc.want) {
				t.Errorf("tags\n%v\nwant\n%v", got, tc.want)
			}
		})
	}
	v := tensorBoardValues(plots.Record{Eval: map[string]float64{"all.accuracy": 0.7}})
	if len(v) != 1 || v[0].Scalar != float32(0.7) {
		t.Errorf("value %v", v)
	}
}
