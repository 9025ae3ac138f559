package synth

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/npy"
)

// set is a generated split loaded back from disk: pooled visual features
// (mean over tokens), the audio vector, and labels.
type set struct {
	vis, aud [][]float64
	label    []int
	subset   []string
	subtitle []string
}

func load(t *testing.T, dir, manifest string, p Preset) set {
	t.Helper()
	samples, err := data.ReadManifest(filepath.Join(dir, manifest), data.ManifestOptions{
		Labels: Labels, Subsets: Subsets, Inputs: []string{p.Visual.Name, p.Audio.Name}})
	if err != nil {
		t.Fatal(err)
	}
	var s set
	for _, smp := range samples {
		v, err := npy.ReadFile(filepath.Join(dir, smp.Features[p.Visual.Name]))
		if err != nil {
			t.Fatal(err)
		}
		a, err := npy.ReadFile(filepath.Join(dir, smp.Features[p.Audio.Name]))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(v.Shape, []int{p.Visual.Tokens, p.Visual.Dim}) || !slices.Equal(a.Shape, []int{p.Audio.Dim}) {
			t.Fatalf("shapes %v %v", v.Shape, a.Shape)
		}
		pooled := make([]float64, p.Visual.Dim)
		for i, x := range v.Data {
			pooled[i%p.Visual.Dim] += float64(x) / float64(p.Visual.Tokens)
		}
		aud := make([]float64, p.Audio.Dim)
		for i, x := range a.Data {
			aud[i] = float64(x)
		}
		s.vis, s.aud = append(s.vis, pooled), append(s.aud, aud)
		s.label = append(s.label, slices.Index(Labels, smp.Label))
		s.subset = append(s.subset, smp.Subset)
		s.subtitle = append(s.subtitle, smp.Subtitle)
	}
	return s
}

// centroids computes class means of x over the rows where keep is true.
func centroids(x [][]float64, y []int, keep func(i int) bool) [][]float64 {
	c := make([][]float64, len(Labels))
	n := make([]float64, len(Labels))
	for k := range c {
		c[k] = make([]float64, len(x[0]))
	}
	for i := range x {
		if !keep(i) {
			continue
		}
		n[y[i]]++
		for d, v := range x[i] {
			c[y[i]][d] += v
		}
	}
	for k := range c {
		for d := range c[k] {
			c[k][d] /= max(n[k], 1)
		}
	}
	return c
}

func nearest(c [][]float64, v []float64) int {
	best, bestD := 0, math.Inf(1)
	for k := range c {
		d := 0.0
		for i := range v {
			d += (v[i] - c[k][i]) * (v[i] - c[k][i])
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// direction returns the unit difference of the means of x over a and b, and
// the projection threshold half-way between them.
func direction(x [][]float64, a, b func(i int) bool) ([]float64, float64) {
	ma, mb := make([]float64, len(x[0])), make([]float64, len(x[0]))
	var na, nb float64
	for i := range x {
		switch {
		case a(i):
			na++
			for d, v := range x[i] {
				ma[d] += v
			}
		case b(i):
			nb++
			for d, v := range x[i] {
				mb[d] += v
			}
		}
	}
	dir := make([]float64, len(ma))
	mid := 0.0
	norm := 0.0
	for d := range dir {
		ma[d] /= na
		mb[d] /= nb
		dir[d] = ma[d] - mb[d]
		norm += dir[d] * dir[d]
	}
	norm = math.Sqrt(norm)
	for d := range dir {
		dir[d] /= norm
		mid += dir[d] * (ma[d] + mb[d]) / 2
	}
	return dir, mid
}

func proj(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// accuracy of predict per subset over s.
func accuracy(s set, predict func(i int) int) map[string]float64 {
	hit, n := map[string]float64{}, map[string]float64{}
	for i := range s.label {
		n[s.subset[i]]++
		if predict(i) == s.label[i] {
			hit[s.subset[i]]++
		}
	}
	for k := range n {
		hit[k] /= n[k]
	}
	return hit
}

// TestConflictProperties checks the README's claims with non-neural
// classifiers fitted on the train split and scored on the eval split:
// nearest class centroid per modality, and a cue direction from the
// difference of means.
func TestConflictProperties(t *testing.T) {
	p, _ := LookupPreset("tiny")
	cfg := DefaultConfig(p)
	cfg.Train, cfg.Eval = 1080, 540
	dir := filepath.Join(t.TempDir(), "synth")
	if _, err := Generate(dir, cfg, false); err != nil {
		t.Fatal(err)
	}
	tr, ev := load(t, dir, "train.jsonl", p), load(t, dir, "eval.jsonl", p)
	all := func(int) bool { return true }
	in := func(s set, sub ...string) func(int) bool {
		return func(i int) bool { return slices.Contains(sub, s.subset[i]) }
	}
	// Per-modality label centroids, fitted where that modality is genuine.
	cv := centroids(tr.vis, tr.label, in(tr, data.SubsetConsistent, data.SubsetVideoAligned))
	ca := centroids(tr.aud, tr.label, in(tr, data.SubsetConsistent, data.SubsetAudioAligned))
	// Cue: which modality is genuine, read from the visual features.
	cue, thr := direction(tr.vis, in(tr, data.SubsetConsistent, data.SubsetVideoAligned), in(tr, data.SubsetAudioAligned))

	both := accuracy(ev, func(i int) int {
		if proj(cue, ev.vis[i]) > thr {
			return nearest(cv, ev.vis[i])
		}
		return nearest(ca, ev.aud[i])
	})
	visualOnly := accuracy(ev, func(i int) int { return nearest(cv, ev.vis[i]) })
	audioOnly := accuracy(ev, func(i int) int { return nearest(ca, ev.aud[i]) })
	t.Logf("both modalities: %v", both)
	t.Logf("visual only:     %v", visualOnly)
	t.Logf("audio only:      %v", audioOnly)
	for _, sub := range Subsets {
		if both[sub] < 0.9 {
			t.Errorf("both modalities: %.3f on %s, want >= 0.9", both[sub], sub)
		}
	}
	// A single modality is right where it is genuine, and wrong where it is not.
	if visualOnly[data.SubsetVideoAligned] < 0.9 || visualOnly[data.SubsetAudioAligned] > 0.25 {
		t.Errorf("visual only: %v", visualOnly)
	}
	if audioOnly[data.SubsetAudioAligned] < 0.9 || audioOnly[data.SubsetVideoAligned] > 0.25 {
		t.Errorf("audio only: %v", audioOnly)
	}

	// The best a single modality can do on the opposite-aligned subset is
	// chance: in it the modality's label is uniform over the other eight.
	// A centroid classifier fitted on that very subset stays near 1/9.
	chance := 1.0 / float64(len(Labels))
	fitVA := centroids(tr.vis, tr.label, in(tr, data.SubsetAudioAligned))
	vOnAA := accuracy(ev, func(i int) int { return nearest(fitVA, ev.vis[i]) })[data.SubsetAudioAligned]
	fitAV := centroids(tr.aud, tr.label, in(tr, data.SubsetVideoAligned))
	aOnVA := accuracy(ev, func(i int) int { return nearest(fitAV, ev.aud[i]) })[data.SubsetVideoAligned]
	t.Logf("fitted on the opposite subset: visual %.3f, audio %.3f (chance %.3f)", vOnAA, aOnVA, chance)
	if vOnAA > 2.5*chance || aOnVA > 2.5*chance {
		t.Errorf("single modality beats chance on the opposite-aligned subset: visual %.3f audio %.3f", vOnAA, aOnVA)
	}

	// Subtitles carry no label information: a bag-of-words centroid
	// classifier fitted on train subtitles is at chance on eval.
	vocab := map[string]int{}
	bow := func(s string) []float64 {
		v := make([]float64, 64)
		for _, w := range strings.Fields(s) {
			if _, ok := vocab[w]; !ok {
				vocab[w] = len(vocab)
			}
			v[vocab[w]%64]++
		}
		return v
	}
	var trText, evText [][]float64
	for _, s := range tr.subtitle {
		trText = append(trText, bow(s))
	}
	for _, s := range ev.subtitle {
		evText = append(evText, bow(s))
	}
	ct := centroids(trText, tr.label, all)
	textAcc := 0.0
	for i := range evText {
		if nearest(ct, evText[i]) == ev.label[i] {
			textAcc++
		}
	}
	textAcc /= float64(len(evText))
	t.Logf("subtitle-only accuracy %.3f", textAcc)
	if textAcc > 2*chance {
		t.Errorf("subtitles predict the label: %.3f", textAcc)
	}
	for _, s := range append(tr.subtitle, ev.subtitle...) {
		for _, w := range strings.Fields(s) {
			if slices.Contains(Labels, w) {
				t.Fatalf("subtitle %q contains a label", s)
			}
		}
	}
}

func TestBalanceAndDeterminism(t *testing.T) {
	p, _ := LookupPreset("tiny")
	cfg := DefaultConfig(p)
	cfg.Train, cfg.Eval = 54, 27
	base := t.TempDir()
	res, err := Generate(filepath.Join(base, "a"), cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]map[int]int{}
	for _, tr := range res.TrainTruth {
		if count[tr.Subset] == nil {
			count[tr.Subset] = map[int]int{}
		}
		count[tr.Subset][tr.Label]++
		switch tr.Subset {
		case data.SubsetConsistent:
			if tr.VisualLabel != tr.Label || tr.AudioLabel != tr.Label {
				t.Fatalf("consistent sample %+v", tr)
			}
		case data.SubsetVideoAligned:
			if tr.VisualLabel != tr.Label || tr.AudioLabel == tr.Label || !tr.VisualGenuine || tr.AudioGenuine {
				t.Fatalf("video-aligned sample %+v", tr)
			}
		case data.SubsetAudioAligned:
			if tr.AudioLabel != tr.Label || tr.VisualLabel == tr.Label || tr.VisualGenuine || !tr.AudioGenuine {
				t.Fatalf("audio-aligned sample %+v", tr)
			}
		}
	}
	for _, sub := range Subsets {
		for k := range Labels {
			if count[sub][k] != 2 {
				t.Fatalf("subset %s label %d: %d samples, want 2", sub, k, count[sub][k])
			}
		}
	}
	if _, err := Generate(filepath.Join(base, "b"), cfg, false); err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 2
	if _, err := Generate(filepath.Join(base, "c"), cfg, false); err != nil {
		t.Fatal(err)
	}
	read := func(d, f string) []byte {
		b, err := os.ReadFile(filepath.Join(base, d, f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, f := range []string{"train.jsonl", "eval.jsonl", "features/frames/train-00007.npy", "features/audio/eval-00003.npy"} {
		if !bytes.Equal(read("a", f), read("b", f)) {
			t.Errorf("%s differs for the same seed", f)
		}
	}
	if bytes.Equal(read("a", "features/audio/eval-00003.npy"), read("c", "features/audio/eval-00003.npy")) {
		t.Error("different seeds gave the same features")
	}
	// The generated set opens cleanly with the preset's spec.
	rep, err := data.Validate(filepath.Join(base, "a", "train.jsonl"), p.Spec(), nil, data.ValidateOptions{})
	if err != nil || rep.Problems.Len() != 0 || rep.Valid != 54 {
		t.Fatalf("validate: %v %v", err, &rep.Problems)
	}
}

func TestGenerateRefusesNonEmptyDir(t *testing.T) {
	p, _ := LookupPreset("tiny")
	cfg := DefaultConfig(p)
	cfg.Train, cfg.Eval = 3, 3
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("x"), 0o644)
	if _, err := Generate(dir, cfg, false); err == nil {
		t.Fatal("overwrote a non-empty directory")
	}
	if _, err := os.Stat(filepath.Join(dir, "keep.txt")); err != nil {
		t.Fatal("existing content touched")
	}
	entries, _ := os.ReadDir(filepath.Dir(dir))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Fatalf("temporary directory left behind: %s", e.Name())
		}
	}
	if _, err := Generate(dir, cfg, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "train.jsonl")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "keep.txt")); err == nil {
		t.Fatal("replace kept old content")
	}
}

func TestVocabularyCoversText(t *testing.T) {
	v := Vocabulary()
	known := map[string]bool{}
	for _, l := range [][]string{v.Special, v.Words, v.Punct} {
		for _, w := range l {
			known[w] = true
		}
	}
	for _, want := range []string{"<s>", "</s>", "[INST]", "[/INST]", "<VideoHere>", "<FeatureHere>", "contempt", "says", ":", ","} {
		if !known[want] {
			t.Errorf("vocabulary lacks %q", want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		s, w, p := split(Subtitle(r))
		for _, tok := range slices.Concat(s, w, p) {
			if !known[tok] {
				t.Fatalf("subtitle token %q not in vocabulary", tok)
			}
		}
	}
	if len(v.Words) > 200 {
		t.Errorf("vocabulary unexpectedly large: %d words", len(v.Words))
	}
}

// TestVisualTokens: the token-imbalance knob changes the visual feature shape
// (load checks it against the preset) and refuses counts out of range.
func TestVisualTokens(t *testing.T) {
	base, _ := LookupPreset("tiny")
	for _, n := range []int{0, -1, MaxVisualTokens + 1} {
		if _, err := base.WithVisualTokens(n); err == nil {
			t.Errorf("WithVisualTokens(%d) accepted", n)
		}
	}
	p, err := base.WithVisualTokens(8)
	if err != nil {
		t.Fatal(err)
	}
	if base.Visual.Tokens != 32 || p.Visual.Tokens != 8 || p.Spec().Inputs[0].Tokens != 8 {
		t.Fatalf("tokens: preset %d, knob %d, spec %d", base.Visual.Tokens, p.Visual.Tokens, p.Spec().Inputs[0].Tokens)
	}
	cfg := DefaultConfig(p)
	cfg.Train, cfg.Eval = 18, 9
	dir := t.TempDir()
	if _, err := Generate(dir, cfg, true); err != nil {
		t.Fatal(err)
	}
	if s := load(t, dir, "train.jsonl", p); len(s.label) != 18 {
		t.Fatalf("%d samples", len(s.label))
	}
}
