package stack

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omnisynth"
	"github.com/mose-llm/mose/data/tokenizer"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
)

// omniFixture is an omni-tiny thinker (seed) and a synthetic set of
// processor-outputs files drawn in Go, with a recipe over them whose data
// cache is cache.
func omniFixture(t *testing.T, dir string, seed uint64, cache string) *recipes.Config {
	t.Helper()
	model := filepath.Join(dir, "model")
	if _, err := os.Stat(model); err != nil {
		if err := InitOmniModelDir(model, "omni-tiny", seed); err != nil {
			t.Fatal(err)
		}
	}
	set := filepath.Join(dir, "set")
	if _, err := os.Stat(set); err != nil {
		tok, err := tokenizer.Parse(omniproc.TinyTokenizerJSON)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := omnisynth.Generate(context.Background(), set, tok, omnisynth.Config{Samples: 3, Seconds: 1, NoFFmpeg: true}); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := recipes.Load("omni-tiny-mose", []string{"model.path=" + model, "data.train=" + filepath.Join(set, "train.jsonl"),
		"data.synth=", "data.cache_dir=" + cache, "run.threads=1"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// epoch runs OmniBegin over the set in batches [0 1] and [2]: the tower
// runs it took, and each batch's input embeddings.
func epoch(t *testing.T, c *Stack) (int64, [][]float32) {
	t.Helper()
	before := omni.TowerRuns()
	var out [][]float32
	for _, idx := range [][]int{{0, 1}, {2}} {
		b, err := c.Train.Batch(idx, data.ModeTrain, nil)
		if err != nil {
			t.Fatal(err)
		}
		s := torch.NewScope()
		_, _, x := c.OmniBegin(s, b, false)
		if err := s.Err(); err != nil {
			s.Close()
			t.Fatal(err)
		}
		v, err := x.Float32s()
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return omni.TowerRuns() - before, out
}

func sameEmbeds(t *testing.T, what string, a, b [][]float32) {
	t.Helper()
	for i := range a {
		if !slices.Equal(a[i], b[i]) {
			t.Fatalf("%s: batch %d's input embeddings differ from the towers' own", what, i)
		}
	}
}

// The encoder-output cache: the first epoch runs the towers and fills it,
// the second runs no tower (counted) and gives the same input embeddings
// bit for bit; a corrupted entry (a flipped byte, truncated, a wrong shape
// under a good checksum) is refused with a warning, removed and
// recomputed, never used; another model (other tower weights) misses.
// Without the cache the second epoch runs the towers and the test fails.
func TestEncoderCache(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	c, err := Build(omniFixture(t, dir, 1, cache), AllData)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	runs1, want := epoch(t, c)
	if runs1 == 0 {
		t.Fatal("the first epoch ran no tower")
	}
	runs2, got := epoch(t, c)
	if runs2 != 0 {
		t.Fatalf("the second epoch ran the towers %d times, want 0 (all from the cache)", runs2)
	}
	if b, err := c.Train.Batch([]int{0, 1}, data.ModeTrain, nil); err != nil || !b.Media.Deferred || b.Media.Videos != nil || b.Media.Features != nil {
		t.Fatalf("a cached batch's pixels and features were read (%v)", err)
	}
	sameEmbeds(t, "epoch 2 (cached)", want, got)
	entries, _ := filepath.Glob(filepath.Join(cache, "enc", "*.safetensors"))
	if len(entries) != 3 {
		t.Fatalf("%d encoder entries, want 3 (one per sample)", len(entries))
	}
	key0 := c.Enc.Key(c.Train.OmniKey(0))
	path0 := c.Enc.Store.Path(key0)
	good, err := os.ReadFile(path0)
	if err != nil {
		t.Fatal(err)
	}
	shapes, err := func() ([]rowShape, error) {
		b, err := c.Train.Batch([]int{0}, data.ModeTrain, nil)
		if err != nil {
			return nil, err
		}
		return rowShapes(c.Omni.Config, b.Media)
	}()
	if err != nil {
		t.Fatal(err)
	}
	dims := outDims(c.Omni.Config)
	for _, tc := range []struct {
		name    string
		corrupt func() error
	}{
		{"flipped byte", func() error {
			b := slices.Clone(good)
			b[len(b)-9] ^= 0x10
			return os.WriteFile(path0, b, 0o644)
		}},
		{"truncated", func() error { return os.WriteFile(path0, good[:len(good)-100], 0o644) }},
		{"wrong shape, good checksum", func() error {
			bad := shapes[0]
			bad[2]-- // one video row short
			var vals [3][]float32
			for k := range vals {
				vals[k] = make([]float32, bad[k]*dims[k])
			}
			return c.Enc.store(key0, bad, dims, vals)
		}},
		{"non-finite, good checksum", func() error {
			var vals [3][]float32
			for k := range vals {
				vals[k] = make([]float32, shapes[0][k]*dims[k])
			}
			vals[2][3] = float32(posInf())
			return c.Enc.store(key0, shapes[0], dims, vals)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.corrupt(); err != nil {
				t.Fatal(err)
			}
			var warned []string
			c.Enc.Warn = func(m string) { warned = append(warned, m) }
			runs, got := epoch(t, c)
			if runs == 0 || len(warned) != 1 || !strings.Contains(warned[0], key0) {
				t.Fatalf("tower runs %d, warnings %q: want the entry refused and recomputed", runs, warned)
			}
			sameEmbeds(t, "after a "+tc.name, want, got)
			now, err := os.ReadFile(path0)
			if err != nil || !slices.Equal(now, good) {
				t.Fatalf("the entry was not rewritten as it was: %v", err)
			}
		})
	}

	// Another model: other tower weights, another key, a miss.
	other := filepath.Join(t.TempDir())
	if err := os.Symlink(filepath.Join(dir, "set"), filepath.Join(other, "set")); err != nil {
		t.Fatal(err)
	}
	c2, err := Build(omniFixture(t, other, 2, cache), AllData)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if c2.Enc.Towers == c.Enc.Towers {
		t.Fatal("two models of different seeds have one towers hash")
	}
	if runs, _ := epoch(t, c2); runs == 0 {
		t.Fatal("another model's towers were not run: it reused the first model's entries")
	}
}

func posInf() float64 { var z float64; return 1 / z }

// An entry's key changes with each of its parts.
func TestEncKeyParts(t *testing.T) {
	base := EncCache{Towers: "t", DType: torch.Float32, Device: "cpu"}
	seen := map[string]string{base.Key("c"): "base"}
	for name, k := range map[string]string{
		"content": base.Key("d"),
		"towers":  (&EncCache{Towers: "u", DType: torch.Float32, Device: "cpu"}).Key("c"),
		"dtype":   (&EncCache{Towers: "t", DType: torch.BFloat16, Device: "cpu"}).Key("c"),
		"device":  (&EncCache{Towers: "t", DType: torch.Float32, Device: "cuda"}).Key("c"),
	} {
		if prev, ok := seen[k]; ok {
			t.Errorf("a changed %s gives %s's key", name, prev)
		}
		seen[k] = name
	}
}

// With data.encoder_cache false the towers run in every epoch, no entry is
// read or written, and the input embeddings are the cached run's bit for bit
// (each sample is encoded alone either way).
func TestEncoderCacheOff(t *testing.T) {
	dir := t.TempDir()
	on, err := Build(omniFixture(t, dir, 1, filepath.Join(dir, "on")), AllData)
	if err != nil {
		t.Fatal(err)
	}
	defer on.Close()
	_, want := epoch(t, on)
	cfg := omniFixture(t, dir, 1, filepath.Join(dir, "off"))
	cfg.Data.EncoderCache = false
	off, err := Build(cfg, AllData)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	for e := range 2 {
		runs, got := epoch(t, off)
		if runs == 0 {
			t.Fatalf("epoch %d ran no tower with the encoder cache off", e+1)
		}
		sameEmbeds(t, "encoder cache off", want, got)
	}
	if entries, _ := filepath.Glob(filepath.Join(dir, "off", "enc", "*")); len(entries) > 0 {
		t.Fatalf("the encoder cache is off but %d entries were written", len(entries))
	}
}
