package trainer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// nf4Model writes a model with the test fixture's inputs whose decoder
// linears fit NF4's layout (the tiny preset with 4 key/value heads and an MLP
// of 256: every weight 128×128 or 256×128).
func nf4Model(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "nf4-model")
	if _, err := stack.InitModelDir(dir, stack.InitModel{Preset: "tiny", Seed: 3, KVHeads: 4, Intermediate: 256}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// quantRecipe is the fixture's recipe on the nf4-shaped model.
func quantRecipe(t *testing.T, model, quantize string, extra ...string) *recipes.Config {
	return fixture.Recipe(t, append([]string{"model.path=" + model, "model.quantize=" + quantize}, extra...)...)
}

// TestQuantizedCheckpointingSameGradients: on an nf4 (and an int8) base,
// activation checkpointing gives bit-identical gradients; the quantized
// weights never require grad and never get one; the gradients differ from
// the unquantized base's (the quantization is in the step).
func TestQuantizedCheckpointingSameGradients(t *testing.T) {
	model := nf4Model(t)
	grads := func(cfg *recipes.Config, check func(c *stack.Stack)) (off, on [][]float32) {
		err := torch.Run(func() error {
			c, err := stack.Build(cfg, stack.AllData)
			if err != nil {
				return err
			}
			defer c.Close()
			if err := torch.ManualSeed(7); err != nil {
				return err
			}
			for _, p := range c.Params { // B is zero at init: give every parameter values
				if err := torch.NoGrad(func() error { return p.T.UniformFill(-0.05, 0.05) }); err != nil {
					return err
				}
			}
			loader, _, err := c.NewTrainLoader(context.Background(), data.SamplerState{})
			if err != nil {
				return err
			}
			defer loader.Close()
			b, err := loader.Next()
			if err != nil {
				return err
			}
			r := &run{c: c, opt: Options{}, log: testfix.QuietLog()}
			off, _ = stepGrads(t, r, []*data.Batch{b}, 3, false)
			on, _ = stepGrads(t, r, []*data.Batch{b}, 3, true)
			if check != nil {
				check(c)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return off, on
	}
	for _, extra := range [][]string{{"adapters.targets=[q_proj,v_proj,down_proj]"}, {"adapters.method=lora"}} {
		var plain [][]float32
		for _, q := range []string{"none", "nf4", "int8"} {
			t.Run(q+"/"+strings.Join(extra, ","), func(t *testing.T) {
				cfg := quantRecipe(t, model, q, append([]string{"adapters.dropout=0.2", "adapters.gate.noise=0.5"}, extra...)...)
				off, on := grads(cfg, func(c *stack.Stack) {
					for _, l := range c.Model.Linears() {
						if (l.Quant != nil) != (q != "none") {
							t.Fatalf("%s: quantized %v with model.quantize %s", l.Name, l.Quant != nil, q)
						}
						if l.Quant == nil {
							continue
						}
						for _, p := range l.Quant.Parts() {
							if p.T.RequiresGrad() {
								t.Errorf("%s.%s requires grad", l.Name, p.Name)
							}
						}
					}
				})
				if w, n := gradDiff(off, on); n > 0 {
					t.Errorf("%d gradient elements differ with checkpointing (max %.3g)", n, w)
				}
				if _, n := gradDiff(on, zerosLike(on)); n == 0 {
					t.Error("every gradient is zero")
				}
				if q == "none" {
					plain = on
				} else if _, n := gradDiff(on, plain); n == 0 {
					t.Errorf("%s gives the unquantized base's gradients", q)
				}
			})
		}
	}
}

// TestQuantizedExactResume: MoSE and LoRA on an nf4 base, interrupted and
// resumed, end with the straight run's adapters and losses bit for bit.
func TestQuantizedExactResume(t *testing.T) {
	model := nf4Model(t)
	for _, extra := range [][]string{{"adapters.modality_weights=contribution"}, {"adapters.method=lora", "train.grad_accum=2"}} {
		t.Run(strings.Join(extra, ","), func(t *testing.T) {
			straight := quantRecipe(t, model, "nf4", extra...)
			res, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()})
			if err != nil {
				t.Fatal(err)
			}
			want, wantLoss := adapterValues(t, res.Checkpoint), lossTrace(t, straight.Run.OutputDir)
			split := quantRecipe(t, model, "nf4", extra...)
			ctx, cancel := context.WithCancel(context.Background())
			_, err = Run(ctx, split, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
				if step == 5 {
					cancel()
				}
			}})
			if !errors.Is(err, ErrInterrupted) {
				t.Fatalf("interrupted run: %v", err)
			}
			if res, err = Run(context.Background(), split, Options{Log: testfix.QuietLog(), Resume: "auto"}); err != nil {
				t.Fatal(err)
			}
			if d := maxDiff(t, want, adapterValues(t, res.Checkpoint)); d != 0 {
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
