package memest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/stack"
)

// On a Qwen2.5-Omni thinker the estimate counts the built stack's trainable
// parameters, the thinker's frozen weights (towers included) and a towers'
// forward; the peak is the static memory plus the larger of the towers'
// forward and the decoder's activations.
func TestOmniEstimate(t *testing.T) {
	cfg := fixture.OmniRecipe(t, "adapters.targets=[q_proj,v_proj,down_proj]")
	err := torch.Run(func() error {
		c, err := stack.Build(cfg, stack.AllData)
		if err != nil {
			return err
		}
		defer c.Close()
		var b strings.Builder
		if err := memoryEstimate(c, &b, nil); err != nil {
			return err
		}
		t.Logf("\n%s", b.String())
		sh := Shape{Model: c.Model.Config}
		sh.T, sh.Answer = batchShape(c.Train)
		est, err := Compute(cfg, sh)
		if err != nil {
			return err
		}
		if err := omniTowers(&est, cfg, *c.OmniConfig, omniTowerShape(c.Train, *c.OmniConfig)); err != nil {
			return err
		}
		var want int64
		for _, p := range c.Params {
			want += p.T.Numel()
		}
		if est.Params != want {
			t.Errorf("estimate counts %d trainable parameters, the stack has %d", est.Params, want)
		}
		if w := 4 * c.OmniConfig.ParamCount(); est.Weights != w {
			t.Errorf("frozen weights %d bytes, the thinker has %d", est.Weights, w)
		}
		ts := est.TowerShape
		if ts.Visual != 140 || ts.Audio != 25 || est.Towers <= 0 || est.Loader <= 0 {
			t.Errorf("towers: %+v, %d bytes, loader %d", ts, est.Towers, est.Loader)
		}
		for _, ck := range []bool{false, true} {
			if got, want := est.Total(ck), est.Static()+max(est.Towers, est.Activations(ck)); got != want {
				t.Errorf("total %d, want %d", got, want)
			}
		}
		if !strings.Contains(b.String(), "towers' forward") {
			t.Error("the report does not show the towers' forward")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// validate --memory-only reads a thinker's config.json alone (here
// omni-small's, with no weights), and the estimate grows with the sequence.
func TestOmniFromConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "omni-small")
	os.MkdirAll(dir, 0o755)
	b, err := omni.Presets["omni-small"].MarshalConfig(0.02, "float32")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	var prev string
	for _, T := range []string{"512", "2048"} {
		cfg := fixture.OmniRecipe(t, "model.path="+dir, "data.max_len="+T, "train.batch_size=1")
		out, err := FromConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("\n%s", out)
		if !strings.Contains(out, "Qwen2.5-Omni thinker") || !strings.Contains(out, "of which the towers") || out == prev {
			t.Errorf("report:\n%s", out)
		}
		prev = out
	}
}
