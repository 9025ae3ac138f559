package data

import (
	"strings"
	"unicode"
)

// Synonyms maps words for an emotion (lower case) to the canonical label
// they name. It is the one table: the MER importer maps annotation labels
// through it, and generate-mode evaluation maps generated answers through
// it (on top of each label itself and its prefix forms, see MapAnswer).
var Synonyms = map[string]string{
	"anger": "angry", "angry": "angry", "mad": "angry", "furious": "angry",
	"happy": "happy", "happiness": "happy", "joy": "happy", "joyful": "happy", "glad": "happy",
	"sad": "sad", "sadness": "sad", "unhappy": "sad",
	"worry": "worry", "worried": "worry", "anxious": "worry", "anxiety": "worry",
	"surprise": "surprise", "surprised": "surprise", "shocked": "surprise",
	"fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
	"contempt": "contempt", "contemptuous": "contempt", "disdain": "contempt",
	"doubt": "doubt", "doubtful": "doubt", "skeptical": "doubt", "confused": "doubt",
	"neutral": "neutral", "calm": "neutral",
}

// MapAnswer finds the label a generated answer names: the first word that is
// a label, a synonym of one, or shares a stem (the first four letters) with
// one, e.g. "worry" for "worried". -1 if none.
func MapAnswer(answer string, labels []string) int {
	find := func(w string) int {
		for i, l := range labels {
			if l = strings.ToLower(l); l == w {
				return i
			}
		}
		for i, l := range labels {
			if l = strings.ToLower(l); len(w) >= 4 && len(l) >= 4 && w[:4] == l[:4] {
				return i
			}
		}
		return -1
	}
	for _, w := range strings.FieldsFunc(strings.ToLower(answer), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if i := find(w); i >= 0 {
			return i
		}
		if syn, ok := Synonyms[w]; ok {
			if i := find(syn); i >= 0 {
				return i
			}
		}
	}
	return -1
}
