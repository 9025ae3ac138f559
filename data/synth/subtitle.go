package synth

import (
	"math/rand/v2"
	"strings"
)

// Subtitle word lists: everyday, emotion-free phrases. Subtitles are drawn
// independently of every label, so text alone predicts nothing.
var (
	subjects = []string{"we", "they", "she", "he", "my friend", "the teacher", "my brother", "our neighbour"}
	verbs    = []string{"went to", "walked to", "looked at", "talked about", "cleaned", "visited", "waited near", "painted"}
	objects  = []string{"the station", "the market", "the old house", "the window", "the library", "the garden",
		"the bus stop", "the kitchen", "the river", "the office"}
	times = []string{"this morning", "yesterday", "last week", "after lunch", "on monday", "at noon",
		"before dinner", "in the evening"}
)

func pick(r *rand.Rand, words []string) string { return words[r.IntN(len(words))] }

// Subtitle draws a label-neutral sentence such as "my friend visited the
// garden after lunch", sometimes with a second clause ("and then ..."), so
// that lengths vary.
func Subtitle(r *rand.Rand) string {
	parts := []string{pick(r, subjects), pick(r, verbs), pick(r, objects), pick(r, times)}
	for r.IntN(3) == 0 && len(parts) < 13 {
		parts = append(parts, "and then", pick(r, verbs), pick(r, objects))
	}
	return strings.Join(parts, " ")
}
