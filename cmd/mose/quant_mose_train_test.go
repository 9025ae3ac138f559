package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/stack"
)

// moseParityResult is check_quant_mose_training.py's JSON line.
type moseParityResult struct {
	Steps   int                `json:"steps"`
	Diff    map[string]float64 `json:"max_abs_diff"`
	Worst   float64            `json:"max_abs_loss_diff"`
	Moved   float64            `json:"loss_moved"`
	Mose    []map[string]float64
	Ref     []map[string]float64 `json:"reference"`
	WMose   [][2]float64         `json:"modality_weights_mose"`
	WRef    [][2]float64         `json:"modality_weights_reference"`
	rc      int
	logTail string
}

// TestQuantizedMoSETrainingVsTorchao: 20 steps of MoSE on an nf4 base (the
// tiny model shaped to fit nf4's layout; 3 visual, 3 nonvisual and 1 omni
// expert on q_proj and v_proj, λ_lb 0.01, λ_z 0.001, dropout and gate noise
// 0, frozen projectors, the whole 8-sample set as each step's batch) log the
// emotion, load-balancing, z and total losses of the same run in PyTorch —
// torchao's NF4Tensor linears, python/mose_hf's experts and gates from the
// run's initial adapters, mose's router losses, AdamW, schedule, clipping
// and modality-weight update written in PyTorch
// (scripts/checks/check_quant_mose_training.py) — within 1e-4 at every step,
// and the same modality weights within 1e-5. Two settings: top-1 gates with
// the contribution weights, and dense gates at temperature 2 with the
// token-balanced weights. The reference given a wrong λ_lb, top-2 gates or
// temperature 1 disagrees beyond 1e-4 within 3 steps, and given static
// modality weights within 20, so the comparison can fail.
func TestQuantizedMoSETrainingVsTorchao(t *testing.T) {
	py := quantRefPython(t)
	dir := t.TempDir()
	fit := filepath.Join(dir, "fit")
	if _, err := stack.InitModelDir(fit, stack.InitModel{Preset: "tiny", Seed: 4, KVHeads: 4, Intermediate: 256}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	subset := filepath.Join(dir, "train8.jsonl")
	writeHead(t, e2e.train, subset, n)
	for _, tc := range []struct {
		name   string
		sets   []string
		breaks []parityBreak // recipe edits the reference must disagree with
	}{
		{"top1-contribution", []string{"adapters.gate.top_k=1", "adapters.modality_weights=contribution"}, []parityBreak{
			{"load_balance x10", "load_balance: 0.01", "load_balance: 0.1", "3"},
			{"top_k 2", "top_k: 1", "top_k: 2", "3"},
			{"static modality weights", "modality_weights: contribution", "modality_weights: static", "20"},
		}},
		{"dense-t2-token-balanced", []string{"adapters.gate.top_k=0", "adapters.gate.temperature=2",
			"adapters.modality_weights=token-balanced"}, []parityBreak{
			{"temperature 1", "temperature: 2", "temperature: 1", "3"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && len(tc.breaks) < 2 {
				t.Skip("the second setting runs without -short")
			}
			args, recipe := moseParityRun(t, filepath.Join(dir, tc.name), fit, subset, n, tc.sets...)
			r := moseParity(t, py, append(args, "--recipe", recipe)...)
			last := len(r.Ref) - 1
			t.Logf("%d steps: max |mose - PyTorch (torchao NF4 + mose_hf experts)|: %s; total loss %.4f -> %.4f, lb %.4f -> %.4f; w_visual/w_nonvisual after the last step %v (mose %v)",
				r.Steps, fmtDiffs(r.Diff), r.Ref[0]["total_loss"], r.Ref[last]["total_loss"], r.Ref[0]["lb_loss"], r.Ref[last]["lb_loss"],
				r.WRef[len(r.WRef)-1], r.WMose[len(r.WMose)-1])
			if r.rc != 0 || r.Steps != 20 || r.Worst > 1e-4 {
				t.Errorf("exit %d, %d steps, max loss difference %.3g (tolerance 1e-4)\nmose %v\nref  %v\n%s", r.rc, r.Steps, r.Worst, r.Mose, r.Ref, r.logTail)
			}
			if r.Moved < 1e-2 {
				t.Errorf("training moved the loss by %.3g only: the comparison proves little", r.Moved)
			}
			if len(r.WMose) != len(r.WRef) {
				t.Fatalf("modality weights: %d steps logged by mose, %d by the reference", len(r.WMose), len(r.WRef))
			}
			for i := range r.WMose {
				for j := range 2 {
					if d := r.WMose[i][j] - r.WRef[i][j]; d > 1e-5 || d < -1e-5 {
						t.Errorf("step %d: modality weights %v (mose) vs %v (reference)", i+1, r.WMose[i], r.WRef[i])
					}
				}
			}
			if w := r.WMose[len(r.WMose)-1]; w == [2]float64{1, 1} {
				t.Errorf("the modality weights never moved (%v): their update is not compared", w)
			}
			for _, c := range tc.breaks {
				bad := filepath.Join(dir, tc.name, strings.ReplaceAll(c.name, " ", "_")+".yaml")
				b, err := os.ReadFile(recipe)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(b), c.from) {
					t.Fatalf("%s: %q not in %s", c.name, c.from, recipe)
				}
				if err := os.WriteFile(bad, []byte(strings.Replace(string(b), c.from, c.to, 1)), 0o644); err != nil {
					t.Fatal(err)
				}
				br := moseParity(t, py, append(args, "--recipe", bad, "--steps", c.steps)...)
				t.Logf("reference with %s: exit %d, max differences %s", c.name, br.rc, fmtDiffs(br.Diff))
				if br.rc == 0 || br.Worst <= 1e-4 {
					t.Errorf("reference with %s agrees with mose (exit %d, %.3g): the check cannot fail", c.name, br.rc, br.Worst)
				}
			}
		})
	}
}

// parityBreak is a recipe edit (from -> to) given to the reference alone,
// compared over steps.
type parityBreak struct{ name, from, to, steps string }

// moseParityRun trains 20 MoSE steps on the nf4 model fit with the n
// samples of subset as every step's batch, under dir, and returns the
// reference's arguments (all but --recipe) and the run's recipe.
func moseParityRun(t *testing.T, dir, fit, subset string, n int, sets ...string) (args []string, recipe string) {
	t.Helper()
	run := filepath.Join(dir, "run")
	code, msg := runMose(t, append([]string{"train"}, recipeArgs(run, append([]string{"model.path=" + fit, "model.quantize=nf4",
		"model.train_projectors=false", "adapters.method=mose", "adapters.targets=[q_proj,v_proj]", "adapters.dropout=0",
		"adapters.experts.visual=3", "adapters.experts.nonvisual=3", "adapters.experts.omni=1",
		"adapters.gate.noise=0", "loss.load_balance=0.01", "loss.z_loss=0.001",
		"train.weight_decay=0", fmt.Sprintf("train.batch_size=%d", n), "train.grad_accum=1", "train.max_steps=20",
		"train.save_every=1", "train.keep_last=25", "train.lr=1e-2", "data.train=" + subset,
		"data.root=" + filepath.Dir(e2e.train), "data.eval="}, sets...)...)...)...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, msg)
	}
	ck1 := filepath.Join(run, "checkpoints", "step-0000001")
	exp := filepath.Join(dir, "export")
	if code, msg := runMose(t, "export", "--checkpoint", ck1, "--format", "peft", "--out", exp); code != 0 {
		t.Fatalf("export: exit %d: %s", code, msg)
	}
	init := filepath.Join(dir, "init.safetensors")
	writeInitialAdapters(t, ck1, init)
	args = []string{filepath.Join("..", "..", "scripts", "checks", "check_quant_mose_training.py"), "--model", fit,
		"--export", exp, "--init", init, "--metrics", filepath.Join(run, "metrics.jsonl")}
	for i := range n {
		f := filepath.Join(dir, fmt.Sprintf("sample%d.safetensors", i))
		if code, msg := runMose(t, "dump-logits", "--checkpoint", ck1, "--manifest", subset, "--index", fmt.Sprint(i), "--out", f); code != 0 {
			t.Fatalf("dump-logits %d: exit %d: %s", i, code, msg)
		}
		args = append(args, "--dump", f)
	}
	return args, filepath.Join(ck1, "recipe.yaml")
}

// writeInitialAdapters writes the run's adapters as the trainer builds them
// before its first step (A, B, gate per target, fused as experts.Mixture
// stores them), from the checkpoint's recipe: the gates move at step 0, so a
// checkpoint does not hold their initial values.
func writeInitialAdapters(t *testing.T, ck, out string) {
	t.Helper()
	cfg, _, err := checkpoint.Open(ck)
	if err != nil {
		t.Fatal(err)
	}
	err = torch.Run(func() error {
		c, err := stack.Build(cfg, stack.NoData)
		if err != nil {
			return err
		}
		defer c.Close()
		s := torch.NewScope()
		defer s.Close()
		var ts []checkpoint.Named
		for _, p := range c.Params {
			ts = append(ts, checkpoint.Named{Name: p.Name, T: p.T})
		}
		return checkpoint.WriteTensors(s, out, ts, map[string]string{"format": "pt"})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// moseParity runs check_quant_mose_training.py and parses its JSON line.
func moseParity(t *testing.T, py string, args ...string) moseParityResult {
	t.Helper()
	code, out := runPython(t, py, args...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var r moseParityResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &r); err != nil || len(r.Ref) == 0 {
		t.Fatalf("reference: exit %d: %v: %s", code, err, out)
	}
	r.rc, r.logTail = code, out[max(0, len(out)-2000):]
	return r
}

// fmtDiffs prints the per-loss differences in a fixed order.
func fmtDiffs(d map[string]float64) string {
	var b strings.Builder
	for _, k := range []string{"emotion_loss", "lb_loss", "z_loss", "total_loss"} {
		fmt.Fprintf(&b, "%s %.3g ", k, d[k])
	}
	return strings.TrimSpace(b.String())
}
