package trainer

import "testing"

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
