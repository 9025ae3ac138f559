package recipes

import (
	"errors"
	"strings"
	"testing"
)

// TestQuantizeKey: model.quantize takes none, nf4 or int8; anything else is
// refused naming the key; none is the default (a saved recipe from before
// the key reads back as none); a change of quantization breaks exact resume.
func TestQuantizeKey(t *testing.T) {
	cleanEnv(t)
	dir := t.TempDir()
	path := writeRecipe(t, dir, "r.yaml", minimal)
	base, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if base.Model.Quantize != "none" {
		t.Errorf("default %q, want none", base.Model.Quantize)
	}
	old, _ := base.YAML() // a recipe saved before model.quantize existed
	if !strings.Contains(string(old), "  quantize: none\n") {
		t.Fatalf("saved recipe lacks quantize: none:\n%s", old)
	}
	old = []byte(strings.Replace(string(old), "  quantize: none\n", "", 1))
	if back, err := Parse(old, "old"); err != nil || back.Model.Quantize != "none" || len(ExactnessDiff(back, base)) != 0 {
		t.Errorf("a saved recipe without model.quantize: %v, %v", back, err)
	}
	for _, c := range []struct {
		val, want, errKey string
	}{
		{"none", "none", ""}, {"nf4", "nf4", ""}, {"int8", "int8", ""},
		{"nf3", "", "model.quantize"}, {"NF4", "", "model.quantize"}, {"4bit", "", "model.quantize"},
	} {
		cfg, err := Load(path, []string{"model.quantize=" + c.val})
		if c.errKey != "" {
			if !errors.Is(err, ErrRecipe) || !strings.Contains(fmtErr(err), c.errKey) {
				t.Errorf("quantize %s: %v, want a recipe error naming %s", c.val, err, c.errKey)
			}
			continue
		}
		if err != nil {
			t.Fatalf("quantize %s: %v", c.val, err)
		}
		if cfg.Model.Quantize != c.want {
			t.Errorf("quantize %s: stored %q, want %q", c.val, cfg.Model.Quantize, c.want)
		}
		y, _ := cfg.YAML()
		if (cfg.Hash() == base.Hash()) != (c.want == "none") {
			t.Errorf("quantize %s: hash equal to the unquantized recipe's: %v", c.val, cfg.Hash() == base.Hash())
		}
		diff := ExactnessDiff(base, cfg)
		if (len(diff) == 1 && diff[0] == "model.quantize") != (c.want != "none") {
			t.Errorf("quantize %s: exactness diff %v", c.val, diff)
		}
		back, err := Parse(y, "saved")
		if err != nil || back.Model.Quantize != c.want {
			t.Errorf("quantize %s: read back %v, %v", c.val, back, err)
		}
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
