package data

import "testing"

// MapAnswer finds the label a generated answer names: a label, a synonym of
// one or a shared stem; nothing for an answer that names none.
func TestMapAnswer(t *testing.T) {
	labels := []string{"happy", "sad", "neutral", "angry", "worried", "surprise", "fear", "contempt", "doubt"}
	for _, c := range []struct {
		answer string
		want   string
	}{
		{"happy", "happy"}, {"Happy.", "happy"}, {" sad</s>", "sad"}, {"I think it is anger", "angry"},
		{"worry", "worried"}, {"anxious", "worried"}, {"surprised!", "surprise"}, {"afraid", "fear"},
		{"doubtful", "doubt"}, {"calm", "neutral"}, {"", ""}, {"the person dances", ""},
	} {
		got := MapAnswer(c.answer, labels)
		name := ""
		if got >= 0 {
			name = labels[got]
		}
		if name != c.want {
			t.Errorf("MapAnswer(%q) = %q, want %q", c.answer, name, c.want)
		}
	}
}
