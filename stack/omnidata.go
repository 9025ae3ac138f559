package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/omniproc"
	"github.com/mose-llm/mose/data/omniprep"
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

// omniMedia is the processor stage of the recipe's data cache for model.path.
func (c *Stack) omniMedia(what string) (*omniprep.Cache, error) {
	if c.mediaCache != nil {
		return c.mediaCache, nil
	}
	dir, err := DataCacheDir(c.Cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: data.cache_dir: %v", recipes.ErrRecipe, err)
	}
	prep, err := LoadOmniPrep(c.Cfg.Model.Path, "")
	if err != nil {
		return nil, fmt.Errorf("model.path %s: %w", c.Cfg.Model.Path, err)
	}
	mc := &omniprep.Cache{Prep: prep, Settings: MediaSettings(c.Cfg), Store: cas.Store{Dir: filepath.Join(dir, "proc")},
		Workers: c.Cfg.Data.Workers, Ctx: context.Background(), Warn: DataHooks.Warn}
	if p := DataHooks.Progress; p != nil {
		mc.Progress = func(done, total int) { p(what, done, total) }
	}
	c.mediaCache = mc
	return mc, nil
}

// lazyMedia is the processor stage, made when a manifest has media samples.
type lazyMedia struct {
	c    *Stack
	what string
}

// Prepare is omniprep.Cache.Prepare, the cache made on first use.
func (l lazyMedia) Prepare(items []data.MediaFiles) []data.MediaResult {
	mc, err := l.c.omniMedia(l.what)
	if err != nil {
		out := make([]data.MediaResult, len(items))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	return mc.Prepare(items)
}
