package trainer

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/recipes"
	"github.com/mose-llm/mose/stack"
)

// stepGrads runs forwardBackward on batches at step with activation
// checkpointing on or off and returns every parameter's gradient and the
// step's numbers. The gradients are zeroed first.
func stepGrads(t *testing.T, r *run, batches []*data.Batch, step int, on bool) ([][]float32, stepStats) {
	t.Helper()
	c := r.c
	c.Cfg.Train.ActivationCheckpointing = on
	for _, p := range c.Params {
		if err := p.T.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
	}
	answer := 0
	for _, b := range batches {
		answer += b.AnswerTokens
	}
	st, err := r.forwardBackward(batches, step, true, answer)
	if err != nil {
		t.Fatal(err)
	}
	s := torch.NewScope()
	defer s.Close()
	grads := make([][]float32, len(c.Params))
	for i, p := range c.Params {
		g := s.Grad(p.T)
		if g == nil {
			t.Fatalf("%s has no gradient (checkpointing %v)", p.Name, on)
		}
		v, err := g.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		grads[i] = v
	}
	return grads, st
}

// zerosLike is a set of zero gradients shaped like g.
func zerosLike(g [][]float32) [][]float32 {
	z := make([][]float32, len(g))
	for i := range g {
		z[i] = make([]float32, len(g[i]))
	}
	return z
}

// gradDiff is the largest absolute difference between two gradient sets,
// and the number of elements that are not bit-identical.
func gradDiff(a, b [][]float32) (worst float64, differ int) {
	for i := range a {
		for j := range a[i] {
			if math.Float32bits(a[i][j]) != math.Float32bits(b[i][j]) {
				differ++
				worst = math.Max(worst, math.Abs(float64(a[i][j]-b[i][j])))
			}
		}
	}
	return worst, differ
}

// TestCheckpointingSameGradients: with activation checkpointing the
// gradients of every adapter, gate and trained projector are bit-identical
// to the full graph's, on MoSE with dropout, gate noise, load-balancing and
// z losses, contribution weights and two micro-batches; so are the step's
// losses, norms and router telemetry. A control shows the comparison can
// fail: the next step's seeds give other gradients.
func TestCheckpointingSameGradients(t *testing.T) {
	for _, extra := range [][]string{
		{"adapters.modality_weights=contribution", "loss.load_balance=0.1", "loss.z_loss=0.01", "adapters.gate.top_k=1"},
		{"adapters.gate.top_k=0", "adapters.targets=[q_proj,v_proj,down_proj]"},
		{"adapters.method=lora"},
	} {
		t.Run(strings.Join(extra, ","), func(t *testing.T) {
			cfg := fixture.Recipe(t, append([]string{"model.train_projectors=true", "train.grad_accum=2",
				"adapters.dropout=0.2", "adapters.gate.noise=0.5"}, extra...)...)
			checkpointingSameGradients(t, cfg)
		})
	}
}

// checkpointingSameGradients builds cfg's stack with every parameter drawn
// from U(-0.05, 0.05) (B is zero at init, which zeroes the gradients of A,
// the gates and the expert norms), takes two batches and checks that one
// step's gradients, losses, norms and router telemetry are the same with
// activation checkpointing as without, that the comparison can fail (the
// next step's seeds give other gradients) and that a checkpointed step
// leaks no tensor.
func checkpointingSameGradients(t *testing.T, cfg *recipes.Config) {
	t.Helper()
	err := torch.Run(func() error {
		c, err := stack.Build(cfg, stack.AllData)
		if err != nil {
			return err
		}
		defer c.Close()
		c.Tracker.PerTarget = true
		if err := torch.ManualSeed(7); err != nil {
			return err
		}
		for _, p := range c.Params {
			if err := torch.NoGrad(func() error { return p.T.UniformFill(-0.05, 0.05) }); err != nil {
				return err
			}
		}
		loader, _, err := c.NewTrainLoader(context.Background(), data.SamplerState{})
		if err != nil {
			return err
		}
		defer loader.Close()
		var batches []*data.Batch
		for range 2 {
			b, err := loader.Next()
			if err != nil {
				return err
			}
			batches = append(batches, b)
		}
		r := &run{c: c, opt: Options{}, log: testfix.QuietLog()}
		off, stOff := stepGrads(t, r, batches, 3, false)
		on, stOn := stepGrads(t, r, batches, 3, true)
		if w, n := gradDiff(off, on); n > 0 {
			t.Errorf("%d gradient elements differ with checkpointing (max %.3g)", n, w)
		}
		if stOff.emotion != stOn.emotion || stOff.gradNorm != stOn.gradNorm ||
			stOff.visualNorm != stOn.visualNorm || stOff.audioNorm != stOn.audioNorm {
			t.Errorf("step numbers differ: off %v %v %v %v, on %v %v %v %v", stOff.emotion, stOff.gradNorm, stOff.visualNorm, stOff.audioNorm,
				stOn.emotion, stOn.gradNorm, stOn.visualNorm, stOn.audioNorm)
		}
		// The router losses of the layers add up to the pass's (the
		// summation order differs: close, not bit-identical).
		if math.Abs(stOff.balance-stOn.balance) > 1e-6*math.Max(1, stOff.balance) || math.Abs(stOff.z-stOn.z) > 1e-6*math.Max(1, stOff.z) {
			t.Errorf("router losses: off %v %v, on %v %v", stOff.balance, stOff.z, stOn.balance, stOn.z)
		}
		if !reflect.DeepEqual(stOff.router, stOn.router) {
			t.Errorf("router telemetry differs:\noff %+v\non  %+v", stOff.router[:min(2, len(stOff.router))], stOn.router[:min(2, len(stOn.router))])
		}
		if cfg.Adapters.ModalityWeights == "contribution" && (stOn.visualNorm == 0 || stOn.audioNorm == 0) {
			t.Error("expert norms are zero: the contribution weights are not exercised")
		}
		if w, n := gradDiff(on, zerosLike(on)); n < len(on) {
			t.Errorf("only %d nonzero gradient elements over %d parameters", n, len(on))
		} else {
			t.Logf("%d gradient elements, bit-identical with checkpointing (largest %.3g)", n, w)
		}
		if cfg.Adapters.Method == "mose" && len(stOn.router) == 0 {
			t.Error("no router telemetry")
		}
		live := torch.Live()
		other, _ := stepGrads(t, r, batches, 4, true)
		if _, n := gradDiff(on, other); n == 0 {
			t.Error("control: step 4's dropout and gate noise give the same gradients as step 3's")
		}
		if got := torch.Live(); got != live {
			t.Errorf("a checkpointed step leaks: %d live tensors before, %d after", live, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointingExactResume: a straight run without checkpointing, and a
// run with it interrupted and resumed (once with it on, once toggled off),
// end with the same adapters bit for bit and the same loss trace.
func TestCheckpointingExactResume(t *testing.T) {
	extra := []string{"model.train_projectors=true", "adapters.modality_weights=contribution", "train.grad_accum=2"}
	straight := fixture.Recipe(t, extra...)
	res, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	want, wantLoss := adapterValues(t, res.Checkpoint), lossTrace(t, straight.Run.OutputDir)
	for _, resumeOn := range []bool{true, false} {
		split := fixture.Recipe(t, append(extra, "train.activation_checkpointing=true")...)
		ctx, cancel := context.WithCancel(context.Background())
		_, err = Run(ctx, split, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
			if step == 5 {
				cancel()
			}
		}})
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("interrupted run: %v", err)
		}
		split.Train.ActivationCheckpointing = resumeOn
		res, err = Run(context.Background(), split, Options{Log: testfix.QuietLog(), Resume: "auto"})
		if err != nil {
			t.Fatal(err)
		}
		if d := maxDiff(t, want, adapterValues(t, res.Checkpoint)); d != 0 {
			t.Errorf("resumed with checkpointing %v: adapters differ by %.3g from the straight run without it", resumeOn, d)
		}
		got := lossTrace(t, split.Run.OutputDir)
		for step, l := range wantLoss {
			if got[step] != l {
				t.Errorf("resumed with checkpointing %v: step %d loss %v, straight %v", resumeOn, step, got[step], l)
			}
		}
	}
}

// TestOldRNGSchemeResume: a checkpoint of the previous seeding scheme is
// refused with a message naming --allow-recipe-change, and resumes with it.
func TestOldRNGSchemeResume(t *testing.T) {
	cfg := fixture.Recipe(t, "train.max_steps=3", "train.schedule=constant", "train.warmup_steps=0")
	if _, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	ck := filepath.Join(cfg.Run.OutputDir, "checkpoints", checkpoint.StepDir(3))
	testfix.Reseal(t, ck, func(st *checkpoint.State) { st.RNG.Scheme = checkpoint.OldRNGSchemes[0] })
	cfg.Train.MaxSteps = 5
	_, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto"})
	if !errors.Is(err, checkpoint.ErrResume) || !strings.Contains(err.Error(), "--allow-recipe-change") || !strings.Contains(err.Error(), "no longer exact") {
		t.Fatalf("resume of an old-scheme checkpoint: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.Run.OutputDir, "checkpoints", checkpoint.StepDir(5))); err == nil {
		t.Fatal("a refused resume trained")
	}
	res, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), Resume: "auto", AllowRecipeChange: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 5 {
		t.Errorf("resumed run ended at step %d", res.Steps)
	}
}

// TestCheckpointingNonFinite: a NaN step is skipped with checkpointing too.
func TestCheckpointingNonFinite(t *testing.T) {
	cfg := fixture.Recipe(t, "train.activation_checkpointing=true", "train.max_steps=5", "train.grad_accum=2")
	res, err := Run(context.Background(), cfg, Options{Log: testfix.QuietLog(), NonFiniteAt: func(step int) bool { return step == 2 }})
	if err != nil {
		t.Fatal(err)
	}
	if res.Skipped != 1 || res.Steps != 5 {
		t.Errorf("skipped %d of %d steps, want 1 of 5", res.Skipped, res.Steps)
	}
}

func TestLayerOf(t *testing.T) {
	for _, tt := range []struct {
		name string
		i    int
		ok   bool
	}{
		{"model.layers.0.self_attn.q_proj", 0, true},
		{"model.layers.17.mlp.down_proj", 17, true},
		{"base_model.model.model.layers.3.self_attn.v_proj", 3, true},
		{"model.layers.x.mlp", 0, false},
		{"model.layers.5", 0, false},
		{"lm_head", 0, false},
	} {
		i, ok := layerOf(tt.name)
		if i != tt.i || ok != tt.ok {
			t.Errorf("layerOf(%q) = %d, %v; want %d, %v", tt.name, i, ok, tt.i, tt.ok)
		}
	}
}
