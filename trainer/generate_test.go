package trainer

import (
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/model"
)

func TestMapLabel(t *testing.T) {
	labels := []string{"happy", "sad", "neutral", "angry", "worried", "surprise", "fear", "contempt", "doubt"}
	for _, c := range []struct {
		answer string
		want   string
	}{
		{"happy", "happy"}, {"Happy.", "happy"}, {" sad</s>", "sad"}, {"I think it is anger", "angry"},
		{"worry", "worried"}, {"anxious", "worried"}, {"surprised!", "surprise"}, {"afraid", "fear"},
		{"doubtful", "doubt"}, {"calm", "neutral"}, {"", ""}, {"the person dances", ""},
	} {
		got := mapLabel(c.answer, labels)
		name := ""
		if got >= 0 {
			name = labels[got]
		}
		if name != c.want {
			t.Errorf("mapLabel(%q) = %q, want %q", c.answer, name, c.want)
		}
	}
}

// Greedy generation and scoring agree on the fixture once trained: the
// generated first word is the top-scored label.
func TestGenerateMode(t *testing.T) {
	_, ck := trained(t)
	for _, mode := range []string{"score", "generate"} {
		cfg := testRecipe(t, "eval.mode="+mode, "eval.max_new_tokens=3")
		rep, err := Evaluate(t.Context(), cfg, ck, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if rep.Subsets["all"].N != 36 {
			t.Errorf("%s: %d samples evaluated, want 36", mode, rep.Subsets["all"].N)
		}
	}
}

// The data package and the model number modalities the same way: batches'
// modality ids go to the model unchanged.
func TestModalityNumbering(t *testing.T) {
	pairs := [][2]int{{int(data.Text), model.ModText}, {int(data.Visual), model.ModVisual},
		{int(data.Audio), model.ModAudio}, {int(data.Pad), model.ModPad}}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("data and model disagree on a modality id: %d vs %d", p[0], p[1])
		}
	}
}
