package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// harness runs mose for the comparison.
type harness struct {
	o      options
	models map[string]string // data dir -> its own model (the visual-tokens knob)
}

// runSpec is one training run (and its evaluations).
type runSpec struct {
	Variant string   `json:"variant"`
	Seed    int      `json:"seed"`
	Dir     string   `json:"dir"`
	Sets    []string `json:"sets"`
	AR      bool     `json:"ar"`

	Trainable int64       `json:"trainable"`
	Eval      *evalResult `json:"eval,omitempty"`
	EvalAR    *evalResult `json:"eval_ar,omitempty"`
}

// evalResult is the part of eval.json the comparison reads.
type evalResult struct {
	Subsets map[string]struct {
		Accuracy   float64 `json:"accuracy"`
		UAR        float64 `json:"uar"`
		WeightedF1 float64 `json:"weighted_f1"`
	} `json:"subsets"`
	ConflictGap *float64 `json:"conflict_gap"`
}

func (h *harness) modelDir() string { return filepath.Join(h.o.out, "model") }

// prepareModel creates the demo's random tiny model once (the same for every run).
func (h *harness) prepareModel() error {
	if _, err := os.Stat(filepath.Join(h.modelDir(), "config.json")); err == nil {
		return nil
	}
	return h.mose(filepath.Join(h.o.out, "init-model.log"), "init-model", "--preset", "tiny", "--seed", "1", "--out", h.modelDir())
}

// modelFor is the model a data set was generated for: the shared one, or,
// when the study varies the visual token count, one made with that count.
func (h *harness) modelFor(dataDir string) string {
	if m, ok := h.models[dataDir]; ok {
		return m
	}
	return h.modelDir()
}

// prepareData generates the synthetic data set tag with the given knobs once
// (and, for visual-tokens, a model with that many visual tokens; with the
// same seed it has the shared model's weights, since the token count is not
// a weight shape).
func (h *harness) prepareData(tag string, knobs map[string]float64) (string, error) {
	dir := filepath.Join(h.o.out, "data", tag)
	if n, ok := knobs["visual-tokens"]; ok {
		md := filepath.Join(h.o.out, "models", tag)
		if _, err := os.Stat(filepath.Join(md, "config.json")); err != nil {
			if err := h.mose(filepath.Join(h.o.out, "models", tag+".log"), "init-model", "--preset", "tiny", "--seed", "1",
				"--visual-tokens", strconv.FormatFloat(n, 'g', -1, 64), "--out", md); err != nil {
				return "", err
			}
		}
		if h.models == nil {
			h.models = map[string]string{}
		}
		h.models[dir] = md
	}
	if _, err := os.Stat(filepath.Join(dir, "eval.jsonl")); err == nil {
		return dir, nil
	}
	args := []string{"synth-data", "--preset", "tiny", "--seed", "1", "--out", dir}
	keys := make([]string, 0, len(knobs))
	for k := range knobs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--"+k, strconv.FormatFloat(knobs[k], 'g', -1, 64))
	}
	return dir, h.mose(filepath.Join(h.o.out, "data", tag+".log"), args...)
}

// base are the overrides every run shares: the prepared model, the schedule,
// one final eval, one thread count.
func (h *harness) base(dataDir string) []string {
	return []string{
		"model.path=" + h.modelFor(dataDir),
		"data.train=" + filepath.Join(dataDir, "train.jsonl"),
		"data.eval=" + filepath.Join(dataDir, "eval.jsonl"),
		fmt.Sprint("train.max_steps=", h.o.steps),
		"train.eval_every=0", "train.save_every=0",
		fmt.Sprint("run.threads=", h.o.threads),
	}
}

func (h *harness) spec(v variant, seed int, dataDir string, rank int, dir string) *runSpec {
	sets := append(h.base(dataDir), fmt.Sprint("run.seed=", seed), "run.output_dir="+dir, "run.name="+v.Name)
	return &runSpec{Variant: v.Name, Seed: seed, Dir: dir, Sets: append(sets, v.sets(rank)...), AR: v.AR}
}

// trainable asks `mose validate` for the trainable parameter count of sets.
func (h *harness) trainable(sets []string) (int64, error) {
	args := append([]string{"validate", "--recipe", h.o.recipe}, setFlags(sets)...)
	out, err := exec.Command(h.o.mose, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("mose validate: %v\n%s", err, out)
	}
	return trainableCount(string(out))
}

// trainableCount finds "N trainable parameters" in mose validate's summary.
func trainableCount(out string) (int64, error) {
	before, _, ok := strings.Cut(out, " trainable parameters")
	if f := strings.Fields(before); ok && len(f) > 0 {
		if n, err := strconv.ParseInt(f[len(f)-1], 10, 64); err == nil {
			return n, nil
		}
	}
	return 0, fmt.Errorf("mose validate printed no trainable parameter count:\n%s", out)
}

// matchedRank is the LoRA rank whose trainable parameter count is closest to
// MoSE's. LoRA's count is linear in the rank, so two probes give the line.
func (h *harness) matchedRank() (int, error) {
	dataDir, err := h.prepareData("default", nil)
	if err != nil {
		return 0, err
	}
	base := h.base(dataDir)
	v, _ := lookupVariant("mose")
	target, err := h.trainable(append(slices.Clone(base), v.sets(0)...))
	if err != nil {
		return 0, err
	}
	lora := func(r int) (int64, error) {
		return h.trainable(append(slices.Clone(base), "adapters.method=lora", fmt.Sprint("adapters.rank=", r)))
	}
	p1, err := lora(1)
	if err != nil {
		return 0, err
	}
	p2, err := lora(2)
	if err != nil {
		return 0, err
	}
	slope, icpt := p2-p1, p1-(p2-p1)
	if slope <= 0 {
		return 0, errors.New("LoRA's trainable count does not grow with the rank")
	}
	r := int((float64(target-icpt) / float64(slope)) + 0.5)
	return max(r, 1), nil
}

// runAll runs every spec, jobs at a time. A run whose eval.json exists with the
// same spec is reused (the comparison can be resumed after an interruption).
func (h *harness) runAll(runs []*runSpec) error {
	sem := make(chan struct{}, h.o.jobs)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := h.runOne(r)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s seed %d: %w", r.Variant, r.Seed, err))
				return
			}
			fmt.Printf("[%d/%d] %-20s seed %d  all %.1f  gap %+.1f pp\n", i+1, len(runs), r.Variant, r.Seed,
				100*r.Eval.Subsets["all"].Accuracy, 100*gapOf(r.Eval))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (h *harness) runOne(r *runSpec) error {
	n, err := h.trainable(r.Sets)
	if err != nil {
		return err
	}
	r.Trainable = n
	specPath := filepath.Join(r.Dir, "compare-spec.json")
	want, _ := json.Marshal(r.Sets)
	if old, err := os.ReadFile(specPath); err == nil && bytes.Equal(old, want) {
		if ev, err := readEval(filepath.Join(r.Dir, "eval.json")); err == nil {
			r.Eval = ev
			return h.evalAR(r)
		}
	}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(specPath, want, 0o644); err != nil {
		return err
	}
	args := append([]string{"train", "--recipe", h.o.recipe, "--no-progress", "--resume", "auto"}, setFlags(r.Sets)...)
	if err := h.mose(filepath.Join(r.Dir, "train.log"), args...); err != nil {
		return err
	}
	ev, err := readEval(filepath.Join(r.Dir, "eval.json"))
	if err != nil {
		return err
	}
	r.Eval = ev
	return h.evalAR(r)
}

// evalAR evaluates the run's final checkpoint with Attention Reallocation.
func (h *harness) evalAR(r *runSpec) error {
	if !r.AR {
		return nil
	}
	out := filepath.Join(r.Dir, "ar")
	if ev, err := readEval(filepath.Join(out, "eval.json")); err == nil {
		r.EvalAR = ev
		return nil
	}
	ck, err := os.ReadFile(filepath.Join(r.Dir, "checkpoints", "latest"))
	if err != nil {
		return err
	}
	args := append([]string{"eval", "--recipe", h.o.recipe, "--checkpoint", filepath.Join(r.Dir, "checkpoints", string(bytes.TrimSpace(ck))),
		"--out", out}, setFlags(append(slices.Clone(r.Sets), "eval.ar.enabled=true"))...)
	if err := h.mose(filepath.Join(r.Dir, "eval-ar.log"), args...); err != nil {
		return err
	}
	r.EvalAR, err = readEval(filepath.Join(out, "eval.json"))
	return err
}

// mose runs the binary with args, its output into logPath.
func (h *harness) mose(logPath string, args ...string) error {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(h.o.mose, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), fmt.Sprint("OMP_NUM_THREADS=", max(h.o.threads, 1)))
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mose %s: %v (log: %s)", args[0], err, logPath)
	}
	return nil
}

func setFlags(sets []string) []string {
	out := make([]string, 0, 2*len(sets))
	for _, s := range sets {
		out = append(out, "--set", s)
	}
	return out
}

func readEval(path string) (*evalResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ev evalResult
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, ok := ev.Subsets["all"]; !ok {
		return nil, fmt.Errorf("%s: no \"all\" subset", path)
	}
	return &ev, nil
}

func gapOf(ev *evalResult) float64 {
	if ev == nil || ev.ConflictGap == nil {
		return 0
	}
	return *ev.ConflictGap
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func createFile(path string) (*os.File, error) { return os.Create(path) }
