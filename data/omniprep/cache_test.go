package omniprep

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/procout"
	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/recipes"
)

// fixture is a model directory (omni-tiny's tokenizer), a folder of clips
// and a processor cache over them.
type fixture struct {
	t     *testing.T
	ff    *media.FFmpeg
	model string
	clips string
	cache string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ff, err := media.Locate(context.Background())
	if err != nil {
		t.Skipf("no ffmpeg (run scripts/setup/ffmpeg.sh): %v", err)
	}
	f := &fixture{t: t, ff: ff, model: t.TempDir(), clips: t.TempDir(), cache: t.TempDir()}
	if err := os.WriteFile(filepath.Join(f.model, "tokenizer.json"), omniproc.TinyTokenizerJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// clip makes a 1 s clip (a test pattern and a tone of freq Hz) named name.
func (f *fixture) clip(name string, freq int, extra ...string) string {
	f.t.Helper()
	p := filepath.Join(f.clips, name)
	args := []string{"-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
		"-f", "lavfi", "-i", "sine=frequency=" + itoa(freq) + ":sample_rate=16000:duration=1"}
	args = append(append(args, extra...), "-t", "1", "-c:v", "ffv1", "-c:a", "flac", p)
	if out, err := exec.Command(f.ff.Path, args...).CombinedOutput(); err != nil {
		f.t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }

// newCache is a cache over f's model directory with settings s.
func (f *fixture) newCache(s Settings) *Cache {
	f.t.Helper()
	p, err := Load(f.model, "", nil, 1<<20)
	if err != nil {
		f.t.Fatal(err)
	}
	return &Cache{Prep: p, Settings: s, Store: cas.Store{Dir: f.cache}, Workers: 2}
}

// one prepares one item and fails the test on an error.
func one(t *testing.T, c *Cache, item data.MediaFiles) data.MediaResult {
	t.Helper()
	r := c.Prepare([]data.MediaFiles{item})[0]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r
}

var base = Settings{FPS: 2, UseAudioInVideo: true}

// TestCacheKeys: the same sample hits; a changed clip, fps, subtitle,
// use_audio_in_video, preprocessor_config.json or tokenizer each miss.
// (With Key ignoring any one of these, its case fails: a hit where a miss
// is wanted.)
func TestCacheKeys(t *testing.T) {
	f := newFixture(t)
	clip := f.clip("a.mkv", 440)
	item := data.MediaFiles{Video: clip, Subtitle: "How does the person feel?"}
	c := f.newCache(base)
	first := one(t, c, item)
	if c.Made.Load() != 1 {
		t.Fatalf("first prepare made %d entries, want 1", c.Made.Load())
	}
	if _, err := procout.Open(first.Path); err != nil {
		t.Fatalf("the entry is not a processor-outputs file: %v", err)
	}
	if again := one(t, c, item); again.Key != first.Key || c.Made.Load() != 1 {
		t.Fatalf("the same sample missed: key %s, then %s; made %d", first.Key, again.Key, c.Made.Load())
	}
	cases := []struct {
		name   string
		change func() (*Cache, data.MediaFiles)
	}{
		{"changed clip", func() (*Cache, data.MediaFiles) {
			f.clip("a.mkv", 660) // same path, other content
			return f.newCache(base), item
		}},
		{"changed fps", func() (*Cache, data.MediaFiles) {
			s := base
			s.FPS = 4
			return f.newCache(s), item
		}},
		{"changed use_audio_in_video", func() (*Cache, data.MediaFiles) {
			s := base
			s.UseAudioInVideo = false
			return f.newCache(s), item
		}},
		{"changed subtitle", func() (*Cache, data.MediaFiles) {
			it := item
			it.Subtitle = "Another question?"
			return f.newCache(base), it
		}},
		{"changed model: preprocessor_config.json", func() (*Cache, data.MediaFiles) {
			if err := os.WriteFile(filepath.Join(f.model, "preprocessor_config.json"), []byte(`{"max_pixels": 20000}`), 0o644); err != nil {
				t.Fatal(err)
			}
			return f.newCache(base), item
		}},
		{"changed model: tokenizer.json", func() (*Cache, data.MediaFiles) {
			b := append([]byte(nil), omniproc.TinyTokenizerJSON...)
			b = append(b, '\n')
			if err := os.WriteFile(filepath.Join(f.model, "tokenizer.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			return f.newCache(base), item
		}},
	}
	seen := map[string]string{first.Key: "first"}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, it := tc.change()
			r := one(t, c, it)
			if prev, ok := seen[r.Key]; ok {
				t.Fatalf("key %s also made by %q: the cache would reuse a stale entry", r.Key[:12], prev)
			}
			seen[r.Key] = tc.name
			if c.Made.Load() != 1 {
				t.Fatalf("made %d entries, want 1 (a miss)", c.Made.Load())
			}
		})
	}
}

// TestCorruptEntry: a flipped byte, a truncated file or a file without a
// checksum is refused (a warning), removed and recomputed; the entry read
// afterwards is the good one. (Without the checksum check the flipped
// payload byte is used: the test fails then.)
func TestCorruptEntry(t *testing.T) {
	f := newFixture(t)
	item := data.MediaFiles{Video: f.clip("a.mkv", 440), Subtitle: "Feel?"}
	c := f.newCache(base)
	good := one(t, c, item)
	want, err := os.ReadFile(good.Path)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{"flipped payload byte", func(b []byte) []byte { b = append([]byte(nil), b...); b[len(b)-5] ^= 0x40; return b }},
		{"flipped header byte", func(b []byte) []byte { b = append([]byte(nil), b...); b[20] ^= 0x01; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }},
		{"empty", func([]byte) []byte { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(good.Path, tc.corrupt(want), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := cas.Verify(good.Path, maxEntryBytes); !errors.Is(err, cas.ErrCorrupt) {
				t.Fatalf("Verify of the damaged entry: %v, want ErrCorrupt", err)
			}
			c := f.newCache(base)
			var warned []string
			c.Warn = func(m string) { warned = append(warned, m) }
			r := one(t, c, item)
			if len(warned) != 1 || c.Made.Load() != 1 {
				t.Fatalf("warnings %q, made %d: want one warning and one recomputed entry", warned, c.Made.Load())
			}
			got, err := os.ReadFile(r.Path)
			if err != nil {
				t.Fatal(err)
			}
			if err := cas.Verify(r.Path, maxEntryBytes); err != nil || len(got) != len(want) {
				t.Fatalf("the recomputed entry: %v, %d bytes (want %d)", err, len(got), len(want))
			}
		})
	}
}

// TestBadClips: a bad clip is an input error naming the file, and leaves no
// entry (nor a temporary file) in the cache.
func TestBadClips(t *testing.T) {
	f := newFixture(t)
	good := f.clip("good.mkv", 440)
	full, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(f.clips, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	silent := filepath.Join(f.clips, "silent.mkv")
	if out, err := exec.Command(f.ff.Path, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1",
		"-c:v", "ffv1", silent).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	tone := filepath.Join(f.clips, "tone.flac")
	if out, err := exec.Command(f.ff.Path, "-hide_banner", "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000:duration=1",
		tone).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	cases := []struct {
		name string
		item data.MediaFiles
		s    Settings
		want string
	}{
		{"not media", data.MediaFiles{Video: write("notes.mp4", []byte(strings.Repeat("not a video\n", 80)))}, base, "notes.mp4"},
		{"truncated", data.MediaFiles{Video: write("cut.mkv", full[:len(full)/3])}, base, "cut.mkv"},
		{"zero length", data.MediaFiles{Video: write("empty.mp4", nil)}, base, "empty.mp4"},
		{"no video stream", data.MediaFiles{Video: tone}, base, "no video stream"},
		{"no audio with use_audio_in_video", data.MediaFiles{Video: silent}, base, "no audio stream"},
		{"beyond max_seconds", data.MediaFiles{Video: good}, Settings{FPS: 2, Limits: media.Limits{MaxSeconds: 0.5}}, "good.mkv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := f.newCache(tc.s)
			r := c.Prepare([]data.MediaFiles{tc.item})[0]
			if r.Err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(r.Err, inputerr.ErrInput) {
				t.Errorf("%v: not an input error (exit 2)", r.Err)
			}
			if !strings.Contains(r.Err.Error(), tc.want) {
				t.Errorf("%v: does not say %q", r.Err, tc.want)
			}
			if entries, _ := os.ReadDir(f.cache); len(entries) != 0 {
				t.Errorf("the cache holds %d entries after a bad clip", len(entries))
			}
		})
	}
}

// TestSameKeyTwoWriters: two caches filling the same key at once both end
// with the same whole entry.
func TestSameKeyTwoWriters(t *testing.T) {
	f := newFixture(t)
	item := data.MediaFiles{Video: f.clip("a.mkv", 440)}
	a, b := f.newCache(base), f.newCache(base)
	done := make(chan data.MediaResult)
	go func() { done <- a.Prepare([]data.MediaFiles{item})[0] }()
	rb := b.Prepare([]data.MediaFiles{item})[0]
	ra := <-done
	if ra.Err != nil || rb.Err != nil || ra.Path != rb.Path {
		t.Fatalf("%v / %v; paths %s, %s", ra.Err, rb.Err, ra.Path, rb.Path)
	}
	if err := cas.Verify(ra.Path, maxEntryBytes); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(f.cache)
	if len(entries) != 1 {
		t.Fatalf("%d files in the cache, want one entry and no temporary file", len(entries))
	}
}

// The recipe's media limits default to package media's.
func TestRecipeLimitsAreMedias(t *testing.T) {
	d := recipes.Defaults().Data
	l := media.DefaultLimits
	if d.MaxSeconds != l.MaxSeconds || d.MaxFrames != l.MaxFrames || d.MaxFramePixels != l.MaxFramePixels {
		t.Errorf("recipe defaults %v s, %d frames, %d pixels; media's %v s, %d frames, %d pixels",
			d.MaxSeconds, d.MaxFrames, d.MaxFramePixels, l.MaxSeconds, l.MaxFrames, l.MaxFramePixels)
	}
}
