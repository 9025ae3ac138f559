package plots

import (
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// synthetic returns n training records of a MoSE run with two router groups (of 4
// and 2 experts), an eval record every 10 steps, and one eval-only record.
func synthetic(n int) []Record {
	var recs []Record
	for i := 1; i <= n; i++ {
		s := float64(i)
		r := Record{
			Step:        i,
			Epoch:       s / 25,
			EmotionLoss: 2.2*math.Exp(-s/15) + 0.1,
			LBLoss:      1 + 0.1*math.Exp(-s/10),
			ZLoss:       0.5 * math.Exp(-s/20),
			LR:          1e-4 * math.Min(1, s/5),
			GradNorm:    1 / s,
			TokensPerS:  1000,
			ModalityWeights: &ModalityWeights{
				Visual: 1, NonVisual: 1,
			},
			Router: map[string]RouterStats{
				"visual": {Load: []float64{0.4 - s/500, 0.3, 0.2, 0.1 + s/500}, Prob: []float64{0.25, 0.25, 0.25, 0.25}, Entropy: 1.3, Z: 2, Balance: 1.05},
				"audio":  {Load: []float64{0.5 + s/1000, 0.5 - s/1000}, Prob: []float64{0.5, 0.5}, Entropy: 0.69, Z: 1, Balance: 1},
			},
		}
		r.TotalLoss = r.EmotionLoss + 0.01*r.LBLoss + 0.001*r.ZLoss
		if i%10 == 0 {
			r.Eval = map[string]float64{"all.accuracy": s / 50, "video-aligned.accuracy": s / 60, "all.uar": s / 55}
		}
		recs = append(recs, r)
	}
	recs = append(recs, Record{Kind: KindEval, Step: n, Eval: map[string]float64{"all.accuracy": 0.7, "consistent.accuracy": 0.8}})
	return recs
}

// checkPNG decodes the PNG at path and checks it is non-empty, and that no
// temporary file was left next to it.
func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() <= 0 || b.Dy() <= 0 {
		t.Fatalf("%s: empty image %v", path, b)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestLosses(t *testing.T) {
	dir := t.TempDir()
	lora := synthetic(30)
	for i := range lora {
		lora[i].LBLoss, lora[i].ZLoss, lora[i].Router, lora[i].ModalityWeights = 0, 0, nil, nil
	}
	nan := synthetic(5)
	nan[2].EmotionLoss, nan[3].TotalLoss = math.NaN(), math.Inf(1)
	tests := []struct {
		name    string
		records []Record
		wantErr error
	}{
		{"mose", synthetic(50), nil},
		{"lora zero aux losses", lora, nil},
		{"single record", synthetic(1)[:1], nil},
		{"eval only", []Record{{Kind: KindEval, Step: 3, Eval: map[string]float64{"all.accuracy": 0.5}}}, nil},
		{"untagged eval only", []Record{{Step: 3, Eval: map[string]float64{"all.accuracy": 0.5}}}, nil},
		{"non-finite values skipped", nan, nil},
		{"empty", nil, ErrNoData},
		{"eval without accuracy", []Record{{Kind: KindEval, Eval: map[string]float64{"all.uar": 0.5}}}, ErrNoData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"), "losses.png")
			err := Losses(tc.records, "run test, step 3", path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Losses = %v, want %v", err, tc.wantErr)
				}
				if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
					t.Errorf("%s written on error", path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Losses: %v", err)
			}
			checkPNG(t, path)
		})
	}
}

func TestExpertLoad(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		records []Record
		wantErr error
	}{
		{"two groups", synthetic(40), nil},
		{"single record", synthetic(1)[:1], nil},
		{"no router (lora)", []Record{{Step: 1, EmotionLoss: 1}}, ErrNoData},
		{"empty load", []Record{{Step: 1, Router: map[string]RouterStats{"visual": {}}}}, ErrNoData},
		{"empty", nil, ErrNoData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".png")
			err := ExpertLoad(tc.records, "", path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ExpertLoad = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ExpertLoad: %v", err)
			}
			checkPNG(t, path)
		})
	}
}

func TestConfusion(t *testing.T) {
	dir := t.TempDir()
	emotions := []string{"neutral", "happy", "sad", "angry", "surprise", "fear", "disgust", "worried", "doubt"}
	big := make([][]int, len(emotions))
	for i := range big {
		big[i] = make([]int, len(emotions))
		for j := range big[i] {
			big[i][j] = (i + 2*j) % 5
		}
		big[i][i] = 40
	}
	tests := []struct {
		name   string
		labels []string
		matrix [][]int
		ok     bool
	}{
		{"nine labels", emotions, big, true},
		{"one label", []string{"a"}, [][]int{{3}}, true},
		{"all zero", []string{"a", "b"}, [][]int{{0, 0}, {0, 0}}, true},
		{"no labels", nil, nil, false},
		{"row count mismatch", []string{"a", "b"}, [][]int{{1, 2}}, false},
		{"ragged row", []string{"a", "b"}, [][]int{{1, 2}, {3}}, false},
		{"negative count", []string{"a", "b"}, [][]int{{1, -2}, {3, 4}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".png")
			err := Confusion(tc.labels, tc.matrix, "", path)
			if !tc.ok {
				if err == nil {
					t.Fatalf("Confusion succeeded, want an error")
				}
				if _, statErr := os.Stat(path); !os.IsNotExist(statErr) {
					t.Errorf("%s written on error", path)
				}
				return
			}
			if err != nil {
				t.Fatalf("Confusion: %v", err)
			}
			checkPNG(t, path)
		})
	}
	if err := Confusion(nil, nil, "", filepath.Join(dir, "x.png")); !errors.Is(err, ErrNoData) {
		t.Errorf("Confusion(nil) = %v, want ErrNoData", err)
	}
}

// TestWriteAtomicReplaces checks a plot replaces an existing file in place.
func TestWriteAtomicReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.png")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Confusion([]string{"a", "b"}, [][]int{{1, 2}, {3, 4}}, "", path); err != nil {
		t.Fatalf("Confusion: %v", err)
	}
	checkPNG(t, path)
	// A directory in the way makes the rename fail; nothing is left behind.
	blocked := filepath.Join(t.TempDir(), "dir.png")
	if err := os.Mkdir(blocked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Confusion([]string{"a"}, [][]int{{1}}, "", blocked); err == nil {
		t.Fatalf("Confusion over a directory succeeded")
	}
	entries, _ := os.ReadDir(filepath.Dir(blocked))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(entries))
	}
}

// TestSeriesSorted checks resumed runs: repeated steps keep the last value.
func TestSeriesSorted(t *testing.T) {
	s := series{}
	for _, p := range [][2]float64{{1, 10}, {2, 20}, {3, 30}, {2, 21}, {3, 31}, {4, 40}} {
		s.add(p[0], p[1])
	}
	s.add(5, math.NaN())
	got := s.sorted()
	want := [][2]float64{{1, 10}, {2, 21}, {3, 31}, {4, 40}}
	if len(got) != len(want) {
		t.Fatalf("sorted = %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i].X != w[0] || got[i].Y != w[1] {
			t.Fatalf("sorted = %v, want %v", got, want)
		}
	}
}

// TestCollectLosses checks eval-only records stay out of the loss curves and
// feed the eval panel.
func TestCollectLosses(t *testing.T) {
	recs := []Record{
		{Step: 1, EmotionLoss: 2, TotalLoss: 2.1, LR: 1e-4},
		{Step: 2, EmotionLoss: 1, TotalLoss: 1.1, LR: 1e-4, Eval: map[string]float64{"all.accuracy": 0.4, "all.uar": 0.3}},
		{Step: 2, Eval: map[string]float64{"all.accuracy": 0.5, "consistent.accuracy": 0.6}}, // untagged eval line
		{Kind: KindEval, Step: 3, LR: 1, Eval: map[string]float64{"all.accuracy": 0.7, "all.loss": 1.5, "consistent.loss": 9}},
	}
	c := collectLosses(recs)
	if got := c.evalLoss.sorted(); len(got) != 1 || got[0].X != 3 || got[0].Y != 1.5 {
		t.Errorf("eval loss points = %v, want (3, 1.5) from all.loss", got)
	}
	if c.train != 2 || len(c.emotion.xys) != 2 || len(c.lr.xys) != 2 {
		t.Fatalf("train=%d emotion=%v lr=%v, want the 2 training records", c.train, c.emotion.xys, c.lr.xys)
	}
	var names []string
	for _, s := range c.evals {
		names = append(names, s.name)
	}
	if strings.Join(names, ",") != "all.accuracy,consistent.accuracy" {
		t.Fatalf("eval series = %v", names)
	}
	got := c.evals[0].sorted()
	if len(got) != 2 || got[0].X != 2 || got[0].Y != 0.5 || got[1].X != 3 || got[1].Y != 0.7 {
		t.Errorf("all.accuracy points = %v, want (2, 0.5) (3, 0.7)", got)
	}
}

// Titles carry the caption; the load panels' reference is 1/K over the
// steps the experts' series span.
func TestCaptionAndUniform(t *testing.T) {
	if got := captioned("run demo, step 300", "Loss"); got != "run demo, step 300 — Loss" {
		t.Errorf("captioned = %q", got)
	}
	if got := captioned("", "Loss"); got != "Loss" {
		t.Errorf("captioned without caption = %q", got)
	}
	var a, b, c series
	a.add(10, 0.2)
	b.add(20, 0.5)
	c.add(40, 0.3)
	u := uniformLoad([]series{a, b, c})
	if u == nil || len(u.xys) != 2 || u.xys[0].X != 10 || u.xys[1].X != 40 || u.xys[0].Y != 1.0/3 || u.xys[1].Y != 1.0/3 {
		t.Errorf("uniformLoad = %+v, want 1/3 from step 10 to 40", u)
	}
	if uniformLoad([]series{{}, {}}) != nil {
		t.Error("uniformLoad of empty series is not nil")
	}
}
