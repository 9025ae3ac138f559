package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniprep"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/model/omni"
	"github.com/mose-llm/mose/recipes"
)

// The data cache of a Qwen2.5-Omni run (docs/media.md): media samples'
// processor outputs under <data.cache_dir>/proc, the towers' outputs under
// <data.cache_dir>/enc (enccache.go).

// DataHooks report on the data cache while a dataset opens or is prepared:
// Progress(what, done, total) after each sample, Warn for each refused
// entry. The CLI sets them (a progress bar, the log); by default warnings
// go to stderr and progress is not shown.
var DataHooks = struct {
	Progress func(what string, done, total int)
	Warn     func(msg string)
}{Warn: func(msg string) { fmt.Fprintln(os.Stderr, "warning:", msg) }}

// OmniSpecialTokens are a Qwen2.5-Omni config's special token ids by token
// string, the ids its tokenizer must give them.
func OmniSpecialTokens(ids omni.TokenIDs) map[string]int {
	return map[string]int{omniproc.TokAudio: ids.Audio, omniproc.TokImage: ids.Image, omniproc.TokVideo: ids.Video,
		omniproc.TokAudioBOS: ids.AudioStart, omniproc.TokAudioEOS: ids.AudioEnd,
		omniproc.TokVisionBOS: ids.VisionStart, omniproc.TokVisionEOS: ids.VisionEnd}
}

// LoadOmniPrep is model directory dir's processor (omniprep.Load) checked
// against its config: the tokenizer (tokPath, default dir/tokenizer.json)
// must give the config's special token ids, and prompts longer than its
// positions are refused.
func LoadOmniPrep(dir, tokPath string) (*omniprep.Prep, error) {
	cfg, err := omni.LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	return omniprep.Load(dir, tokPath, OmniSpecialTokens(cfg.Tokens), cfg.Text.MaxPositionEmbeddings)
}

// DataCacheDir is the recipe's data cache: data.cache_dir, or
// ${MOSE_CACHE:-$HOME/.cache/mose}/data when it is "".
func DataCacheDir(cfg *recipes.Config) (string, error) {
	if cfg.Data.CacheDir != "" {
		return cfg.Data.CacheDir, nil
	}
	return cas.DefaultDir()
}

// MediaSettings are the recipe's processing settings (data.fps,
// data.use_audio_in_video, data.max_*).
func MediaSettings(cfg *recipes.Config) omniprep.Settings {
	d := cfg.Data
	return omniprep.Settings{FPS: d.FPS, UseAudioInVideo: d.UseAudioInVideo,
		Limits: media.Limits{MaxSeconds: d.MaxSeconds, MaxFramePixels: d.MaxFramePixels, MaxFrames: d.MaxFrames}}
}

// MediaPrep is the processor stage of cfg's data cache for model.path
// (an omniprep.Cache), made when a manifest first has media samples (what
// names it in progress reports): data.Options.Media for an omni dataset.
type MediaPrep struct {
	cfg  *recipes.Config
	what string

	once sync.Once
	mc   *omniprep.Cache
	err  error
}

// NewMediaPrep is cfg's MediaPrep for manifest what.
func NewMediaPrep(cfg *recipes.Config, what string) *MediaPrep {
	return &MediaPrep{cfg: cfg, what: what}
}

// cache makes the cache on first use.
func (m *MediaPrep) cache() (*omniprep.Cache, error) {
	m.once.Do(func() {
		dir, err := DataCacheDir(m.cfg)
		if err != nil {
			m.err = fmt.Errorf("%w: data.cache_dir: %v", recipes.ErrRecipe, err)
			return
		}
		prep, err := LoadOmniPrep(m.cfg.Model.Path, "")
		if err != nil {
			m.err = fmt.Errorf("model.path %s: %w", m.cfg.Model.Path, err)
			return
		}
		m.mc = &omniprep.Cache{Prep: prep, Settings: MediaSettings(m.cfg), Store: cas.Store{Dir: filepath.Join(dir, "proc")},
			Workers: m.cfg.Data.Workers, Ctx: context.Background(), Warn: DataHooks.Warn}
		if p := DataHooks.Progress; p != nil {
			what := m.what
			m.mc.Progress = func(done, total int) { p(what, done, total) }
		}
	})
	return m.mc, m.err
}

// Made is how many entries the processor stage computed (0 before use).
func (m *MediaPrep) Made() int64 {
	if m.mc == nil {
		return 0
	}
	return m.mc.Made.Load()
}

// Prepare is omniprep.Cache.Prepare (data.MediaPrep).
func (m *MediaPrep) Prepare(items []data.MediaFiles) []data.MediaResult {
	mc, err := m.cache()
	if err != nil {
		out := make([]data.MediaResult, len(items))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	return mc.Prepare(items)
}

// mediaPrep is the processor stage for manifest (remembered for
// PrepareData's counts).
func (c *Stack) mediaPrep(manifest string) *MediaPrep {
	c.lastMedia = NewMediaPrep(c.Cfg, manifest)
	return c.lastMedia
}
