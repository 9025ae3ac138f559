package data

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mose-llm/mose/data/npy"
	"github.com/mose-llm/mose/internal/fsutil"
	"github.com/mose-llm/mose/internal/inputerr"
)

func TestScanFeaturesFindsNonFinite(t *testing.T) {
	for _, bad := range []float32{nan32, float32(math.Inf(1)), float32(math.Inf(-1))} {
		fx := newFixture(t, 9)
		ds, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ds.ScanFeatures(3); err != nil {
			t.Fatalf("clean data: %v", err)
		}
		v := ramp(12, 0)
		v[5] = bad
		writeNpy(t, filepath.Join(fx.dir, "feat/frames/s004.npy"), npy.Float32, []int{4, 3}, v)
		err = ds.ScanFeatures(3)
		if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "s004.npy") || !strings.Contains(err.Error(), "train.jsonl:5") {
			t.Fatalf("%v: got %v", bad, err)
		}
		if inputerr.Classify(err) != inputerr.Input {
			t.Fatalf("not bad input: %v", err)
		}
	}
}

// A FIFO given as a feature file or a manifest is refused at once, not waited on.
func TestFIFOInputsRefused(t *testing.T) {
	fx := newFixture(t, 4)
	fifo := filepath.Join(fx.dir, "feat/frames/s002.npy")
	os.Remove(fifo)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip("no mkfifo:", err)
	}
	mfifo := filepath.Join(fx.dir, "pipe.jsonl")
	if err := syscall.Mkfifo(mfifo, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		_, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
		done <- err
	}()
	go func() {
		_, err := Open(mfifo, fx.spec, newWordTok(), Options{})
		done <- err
	}()
	for range 2 {
		select {
		case err := <-done:
			if !errors.Is(err, fsutil.ErrNotRegular) || !strings.Contains(err.Error(), "named pipe") {
				t.Errorf("got %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Open hangs on a FIFO")
		}
	}
}
