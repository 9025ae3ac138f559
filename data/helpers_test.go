package data

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/mose-llm/mose/data/npy"
)

// wordTok is a fake tokenizer for tests: "<s>" is 1, "</s>" is 2, and every
// other word or punctuation mark gets the next free id on first sight. Like
// the real one it splits special tokens written in the text and adds nothing.
type wordTok struct {
	mu  sync.Mutex
	ids map[string]int32
	rev []string
}

func newWordTok() *wordTok {
	return &wordTok{ids: map[string]int32{"<pad>": 0, "<s>": 1, "</s>": 2}, rev: []string{"<pad>", "<s>", "</s>"}}
}

func (w *wordTok) Encode(text string) ([]int32, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []int32
	for _, piece := range splitWords(text) {
		id, ok := w.ids[piece]
		if !ok {
			id = int32(len(w.rev))
			w.ids[piece] = id
			w.rev = append(w.rev, piece)
		}
		out = append(out, id)
	}
	return out, nil
}

func (w *wordTok) Decode(ids []int32) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = w.rev[id]
	}
	return strings.Join(parts, " ")
}

// splitWords splits on spaces, keeps <...> and [...] markup whole and makes
// every other punctuation mark its own token.
func splitWords(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	rs := []rune(text)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			flush()
		case r == '<' || r == '[':
			closer := map[rune]rune{'<': '>', '[': ']'}[r]
			j := i + 1
			for j < len(rs) && rs[j] != closer && !unicode.IsSpace(rs[j]) {
				j++
			}
			if j < len(rs) && rs[j] == closer {
				flush()
				out = append(out, string(rs[i:j+1]))
				i = j
				continue
			}
			flush()
			out = append(out, string(r))
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || r == '-':
			cur.WriteRune(r)
		default:
			flush()
			out = append(out, string(r))
		}
	}
	flush()
	return out
}

// testSpec has a visual input of 4 tokens × 3 and an audio input of 1 × 2
// at different placeholders, like Emotion-LLaMA's prompt.
func testSpec() Spec {
	return Spec{
		Inputs: []Input{
			{Name: "frames", Modality: "visual", Dim: 3, Tokens: 4, Placeholder: "<VideoHere>"},
			{Name: "audio", Modality: "audio", Dim: 2, Tokens: 1, Placeholder: "<FeatureHere>"},
		},
		Prompt: Prompt{
			Template: "<s>[INST] <video><VideoHere></video> <feature><FeatureHere></feature> The person in video says: {subtitle}. [emotion] Please determine which emotion label in the video represents: {labels}. [/INST]",
			Answer:   "{label}</s>",
		},
		Labels: []string{"angry", "happy", "sad"},
	}
}

// fixture is a small dataset on disk.
type fixture struct {
	dir      string
	manifest string
	spec     Spec
	samples  []Sample
}

// writeNpy writes a float32 array, creating directories.
func writeNpy(t testing.TB, path string, dtype npy.DType, shape []int, data []float32) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := npy.Write(f, &npy.Array{DType: dtype, Shape: shape, Data: data}); err != nil {
		t.Fatal(err)
	}
}

// ramp returns n values v0, v0+1, ... so tests can tell samples apart.
func ramp(n int, v0 float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = v0 + float32(i)
	}
	return v
}

// newFixture writes n valid samples with subtitles of varying length.
func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), spec: testSpec()}
	for i := range n {
		id := fmt.Sprintf("s%03d", i)
		fp, ap := "feat/frames/"+id+".npy", "feat/audio/"+id+".npy"
		writeNpy(t, filepath.Join(fx.dir, fp), npy.Float32, []int{4, 3}, ramp(12, float32(100*i)))
		writeNpy(t, filepath.Join(fx.dir, ap), npy.Float16, []int{2}, ramp(2, float32(i)))
		fx.samples = append(fx.samples, Sample{
			ID: id, Subset: DefaultSubsets[i%3], Label: fx.spec.Labels[i%3],
			Subtitle: strings.Repeat("word ", 1+i%7) + "end",
			Features: map[string]string{"frames": fp, "audio": ap},
		})
	}
	fx.manifest = filepath.Join(fx.dir, "train.jsonl")
	if err := WriteManifest(fx.manifest, fx.samples); err != nil {
		t.Fatal(err)
	}
	return fx
}

// writeLines writes raw manifest lines.
func writeLines(t testing.TB, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// line renders a sample as a manifest line.
func line(t testing.TB, s Sample) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var nan32 = float32(math.NaN())
