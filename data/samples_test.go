package data

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// OpenSamples gives the examples Open gives for the same samples, and
// refuses bad ones with errors naming the sample and field.
func TestOpenSamples(t *testing.T) {
	fx := newFixture(t, 4)
	want, err := Open(fx.manifest, fx.spec, newWordTok(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := OpenSamples("flags", fx.samples, fx.spec, newWordTok(), Options{Root: fx.dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Examples {
		if !slices.Equal(got.Examples[i].IDs, want.Examples[i].IDs) || !slices.Equal(got.Examples[i].Offsets, want.Examples[i].Offsets) {
			t.Errorf("sample %d: OpenSamples encodes %v, Open %v", i, got.Examples[i].IDs, want.Examples[i].IDs)
		}
	}
	bad := func(edit func(*Sample)) []Sample {
		s := slices.Clone(fx.samples[:1])
		s[0].Features = map[string]string{"frames": s[0].Features["frames"], "audio": s[0].Features["audio"]}
		edit(&s[0])
		return s
	}
	for _, c := range []struct {
		name    string
		samples []Sample
		opt     Options
		want    string
	}{
		{"missing input", bad(func(s *Sample) { delete(s.Features, "audio") }), Options{Root: fx.dir}, "features.audio"},
		{"unknown label", bad(func(s *Sample) { s.Label = "bored" }), Options{Root: fx.dir}, "bored"},
		{"missing file", bad(func(s *Sample) { s.Features["frames"] = "nope.npy" }), Options{Root: fx.dir}, "nope.npy"},
		{"escaping path", bad(func(s *Sample) { s.Features["frames"] = "../x.npy" }), Options{Root: fx.dir}, "x.npy"},
		{"no root", fx.samples, Options{}, "root"},
		{"no samples", nil, Options{Root: fx.dir}, "no samples"},
	} {
		_, err := OpenSamples("flags", c.samples, fx.spec, newWordTok(), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
		if c.name == "no samples" && !errors.Is(err, ErrEmpty) {
			t.Errorf("no samples: %v is not ErrEmpty", err)
		}
	}
}
