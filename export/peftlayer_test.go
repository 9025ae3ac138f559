package export

import (
	"regexp"
	"slices"
	"testing"
)

// TestAnyLayer checks the hand-written layer-index match against PEFT's regex.
func TestAnyLayer(t *testing.T) {
	re := regexp.MustCompile(`^.*\.[^.]*\.(\d+)\.`)
	for _, key := range []string{
		"model.layers.3.self_attn.q_proj", "base_model.model.model.layers.12.mlp.down_proj",
		"layers.3.q_proj", "a.layers.3.q", "model.h.0.attn.1.q_proj", "model.layers.3", "3.x.4.y",
		"x..5.y", "x.y.5", "model.layers.x3.q", "q_proj", "", "a.b.07.c",
	} {
		want := re.FindStringSubmatch(key)
		got := anyLayer(key)
		if (want == nil) != (got == nil) || want != nil && !slices.Equal(want[1:], got[1:]) {
			t.Errorf("%q: got %q, PEFT's regex %q", key, got, want)
		}
	}
}
