package omni

import (
	"path/filepath"
	"testing"

	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
)

// Attention Reallocation runs on the thinker at inference: the decoder sees
// the placeholders' modalities, so the audio and visual attention mass is
// measured per layer and head; β = 0 leaves the logits as they were (within
// float error), β > 0 moves them.
func TestAttentionReallocationOnThinker(t *testing.T) {
	th := loadThinker(t, filepath.Join("testdata", "omni-a"), torch.Float32)
	fx := openFixture(t, "omni-a")
	base := logitsOf(t, th, fx, "omni_prompt")
	diff := func(beta float64, stats *model.ARStats) float64 {
		th.Decoder.AR = &model.AR{First: 0, Last: 1, Beta: beta, TauValue: 0, Stats: stats}
		defer func() { th.Decoder.AR = nil }()
		got := logitsOf(t, th, fx, "omni_prompt")
		return maxAbs(got, base)
	}
	stats := &model.ARStats{}
	if d := diff(0, stats); d > 1e-5 {
		t.Errorf("β = 0 moved the logits by %.3g", d)
	}
	if len(stats.Audio) != 2 || stats.Audio[0][0] <= 0 || stats.Visual[0][0] <= 0 {
		t.Errorf("attention mass per layer: audio %v, visual %v", stats.Audio, stats.Visual)
	}
	if d := diff(0.5, nil); d < 1e-3 {
		t.Errorf("β = 0.5 moved the logits by %.3g only", d)
	}
}
