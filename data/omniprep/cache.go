package omniprep

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/cas"
	"github.com/mose-llm/mose/data/media"
	"github.com/mose-llm/mose/data/procout"
)

// maxEntryBytes bounds the payload of one processor-outputs entry read back
// for verification: the pixels, videos and features at procout's bound each.
const maxEntryBytes = 3 * 4 * procout.MaxMediaValues

// Cache is the processor stage of the data cache: each media sample's
// processor outputs at <Store.Dir>/<Key>.safetensors, in procout's format
// (audio trimmed to its real mel frames) with a payload checksum. Prepare
// fills missing entries in parallel; an entry that fails verification is
// refused, removed and recomputed, never used. It implements
// data.MediaPrep.
type Cache struct {
	Prep     *Prep
	Settings Settings
	Store    cas.Store
	Workers  int
	// Ctx bounds the FFmpeg runs (nil: background).
	Ctx context.Context
	// Progress, when set, is called after each sample (done of total),
	// one call at a time.
	Progress func(done, total int)
	// Warn, when set, is told of each refused entry.
	Warn func(msg string)

	ffOnce sync.Once
	ff     *media.FFmpeg
	ffErr  error
	// Made counts the entries this cache computed (tests read it).
	Made atomic.Int64
}

// Prepare returns each item's entry, computing the missing ones: see
// data.MediaPrep. A bad media file is an input error naming it, and leaves
// no entry.
func (c *Cache) Prepare(items []data.MediaFiles) []data.MediaResult {
	out := make([]data.MediaResult, len(items))
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range max(c.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i].Path, out[i].Key, out[i].Err = c.get(items[i])
				if c.Progress != nil {
					mu.Lock()
					done++
					c.Progress(done, len(items))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}

// get is one item's entry: found and verified, or made.
func (c *Cache) get(f data.MediaFiles) (path, key string, err error) {
	if key, err = c.Prep.Key(f, c.Settings); err != nil {
		return "", "", err
	}
	path = c.Store.Path(key)
	switch err := cas.Verify(path, maxEntryBytes); {
	case err == nil:
		return path, key, nil
	case errors.Is(err, cas.ErrCorrupt):
		if c.Warn != nil {
			c.Warn(fmt.Sprintf("data cache: %v: removed, recomputing", err))
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", "", fmt.Errorf("data cache: removing a corrupt entry: %w", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", "", fmt.Errorf("data cache: %w", err)
	}
	ctx := c.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	c.ffOnce.Do(func() { c.ff, c.ffErr = media.Locate(ctx) })
	if c.ffErr != nil {
		return "", "", c.ffErr
	}
	out, err := c.Prep.Process(ctx, c.ff, f, c.Settings)
	if err != nil {
		return "", "", err
	}
	out.TrimAudio()
	ts, meta := out.Tensors()
	if err := cas.Write(path, ts, meta); err != nil {
		return "", "", fmt.Errorf("data cache: %w", err)
	}
	c.Made.Add(1)
	return path, key, nil
}
