package plots

import (
	"encoding/json"
	"strings"
	"testing"
)

// An evaluation line carries no training fields (no zero lr, loss or grad
// norm for a plot to draw); a training line keeps all of its fields, and
// both read back.
func TestRecordJSON(t *testing.T) {
	ev, err := json.Marshal(Record{Kind: KindEval, Step: 20, Epoch: 0.5, Eval: map[string]float64{"all.accuracy": 0.25}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"lr"`, `"emotion_loss"`, `"grad_norm"`, `"total_loss"`, `"tokens_per_s"`, `"skipped"`} {
		if strings.Contains(string(ev), k) {
			t.Errorf("eval line has %s: %s", k, ev)
		}
	}
	var back Record
	if err := json.Unmarshal(ev, &back); err != nil || !back.IsEval() || back.Step != 20 || back.Eval["all.accuracy"] != 0.25 {
		t.Errorf("eval line reads back as %+v (%v)", back, err)
	}
	tr, err := json.Marshal(Record{Step: 21, LR: 1e-3, EmotionLoss: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"lr":0.001`, `"emotion_loss":2`, `"grad_norm":0`, `"skipped":0`} {
		if !strings.Contains(string(tr), k) {
			t.Errorf("training line lacks %s: %s", k, tr)
		}
	}
}
