package trainer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/checkpoint"
	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/procout"
	"github.com/mose-llm/mose/experts"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/stack"
)

// mediaTokens counts a batch's visual and audio tokens from its samples'
// processor-outputs files alone: t·h·w / merge² per image or video grid,
// the audio tower's output length per audio.
func mediaTokens(t *testing.T, ds *data.Dataset, b *data.Batch, merge int64) (visual, audio, real int) {
	t.Helper()
	for r, i := range b.Index {
		h, err := procout.Open(filepath.Join(filepath.Dir(ds.Manifest), ds.Samples[i].Inputs))
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range append(append([][3]int64{}, h.ImageGridTHW...), h.VideoGridTHW...) {
			visual += int(g[0] * g[1] * g[2] / (merge * merge))
		}
		for _, n := range h.AudioLens {
			audio += int(omni.AudioTokens(n))
		}
		real += b.Lengths[r]
	}
	return visual, audio, real
}

// MoSE on the thinker through the trainer's step: the router telemetry
// counts exactly the batch's visual tokens (video and image placeholders)
// in the visual group and its audio and text tokens in the non-visual
// group, as the processor-outputs files give them, with and without
// activation checkpointing.
func TestOmniRouterCountsTokens(t *testing.T) {
	cfg := fixture.OmniRecipe(t, "adapters.experts.visual=3", "adapters.experts.nonvisual=2", "adapters.experts.omni=1")
	err := torch.Run(func() error {
		c, err := stack.Build(cfg, stack.AllData)
		if err != nil {
			return err
		}
		defer c.Close()
		loader, _, err := c.NewTrainLoader(context.Background(), data.SamplerState{})
		if err != nil {
			return err
		}
		defer loader.Close()
		b, err := loader.Next()
		if err != nil {
			return err
		}
		visual, audio, real := mediaTokens(t, c.Train, b, int64(c.Omni.Config.Vision.SpatialMergeSize))
		if visual == 0 || audio == 0 {
			t.Fatalf("the batch has %d visual and %d audio tokens", visual, audio)
		}
		v, nv := stack.TokenCounts(b)
		if v != visual || nv != real-visual {
			t.Errorf("batch modality: %d visual, %d non-visual; the files give %d and %d", v, nv, visual, real-visual)
		}
		r := &run{c: c, opt: Options{Log: testfix.QuietLog()}}
		for _, on := range []bool{false, true} {
			_, st := stepGrads(t, r, []*data.Batch{b}, 0, on)
			got := map[string]float64{}
			for _, g := range st.router {
				got[g.Group] = g.Tokens
			}
			t.Logf("checkpointing %v: router %v; files: %d visual, %d audio, %d text", on, got, visual, audio, real-visual-audio)
			if got[experts.Visual] != float64(visual) || got[experts.NonVisual] != float64(real-visual) {
				t.Errorf("checkpointing %v: routed %v tokens to the visual group and %v to the non-visual one; the batch has %d visual and %d audio + text",
					on, got[experts.Visual], got[experts.NonVisual], visual, real-visual)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Activation checkpointing on the thinker gives the full graph's gradients
// bit for bit (MoSE with dropout, gate noise, router losses, contribution
// weights and two micro-batches; plain LoRA), and the step's losses.
func TestOmniCheckpointingSameGradients(t *testing.T) {
	for _, extra := range [][]string{
		{"adapters.modality_weights=contribution", "loss.load_balance=0.1", "loss.z_loss=0.01", "adapters.targets=[q_proj,v_proj,down_proj]"},
		{"adapters.method=lora", "adapters.targets=[q_proj,k_proj,v_proj,o_proj]"},
	} {
		t.Run(strings.Join(extra, ","), func(t *testing.T) {
			cfg := fixture.OmniRecipe(t, append([]string{"train.grad_accum=2", "adapters.dropout=0.2", "adapters.gate.noise=0.5"}, extra...)...)
			checkpointingSameGradients(t, cfg)
		})
	}
}

// N steps straight, and k steps + interrupt + resume to N, give the same
// adapters bit for bit and the same loss at every step, on the thinker
// (MoSE with dropout, gate noise, contribution weights, two micro-batches).
// The interrupted run trains with activation checkpointing on, and is
// resumed once with it on and once with it off: the same adapters still.
func TestOmniExactResume(t *testing.T) {
	sets := []string{"adapters.modality_weights=contribution", "train.grad_accum=2", "train.max_steps=6"}
	straight := fixture.OmniRecipe(t, sets...)
	res, err := Run(context.Background(), straight, Options{Log: testfix.QuietLog()})
	if err != nil {
		t.Fatal(err)
	}
	want, wantLoss := adapterValues(t, res.Checkpoint), lossTrace(t, straight.Run.OutputDir)
	for _, ck := range [][2]bool{{false, false}, {true, true}, {true, false}} {
		t.Run(fmt.Sprintf("checkpointing %v then %v", ck[0], ck[1]), func(t *testing.T) {
			omniResume(t, sets, ck, want, wantLoss)
		})
	}
}

func omniResume(t *testing.T, sets []string, ck [2]bool, want map[string][]float32, wantLoss map[int]float64) {
	split := fixture.OmniRecipe(t, append(sets, fmt.Sprintf("train.activation_checkpointing=%v", ck[0]))...)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Run(ctx, split, Options{Log: testfix.QuietLog(), OnStep: func(step int) {
		if step == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("interrupted run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(split.Run.OutputDir, "checkpoints", checkpoint.StepDir(3))); err != nil {
		t.Fatalf("no checkpoint at the interruption: %v", err)
	}
	split.Train.ActivationCheckpointing = ck[1]
	res, err := Run(context.Background(), split, Options{Log: testfix.QuietLog(), Resume: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps != 6 {
		t.Fatalf("resumed run ended at step %d", res.Steps)
	}
	if d := maxDiff(t, want, adapterValues(t, res.Checkpoint)); d != 0 {
		t.Errorf("adapters differ by %.3g after resume", d)
	}
	got := lossTrace(t, split.Run.OutputDir)
	if len(got) != len(wantLoss) || len(got) != 6 {
		t.Fatalf("loss trace has %d steps, want %d", len(got), len(wantLoss))
	}
	for step, l := range wantLoss {
		if got[step] != l {
			t.Errorf("step %d: loss %v after resume, %v straight", step, got[step], l)
		}
	}
}
