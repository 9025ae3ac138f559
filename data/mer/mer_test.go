package mer

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mose-llm/mose/data"
	"github.com/mose-llm/mose/data/npy"
)

// layout writes a miniature Emotion-LLaMA / MER2023 layout:
//
//	ann/train.txt, ann/transcription_en_all.csv,
//	ann/mae_340_UTT/<clip>.npy, ann/maeV_399_UTT/<clip>.npy, ann/HL-UTT/<clip>.npy
type layout struct {
	dir, ann, csv string
	feats         []Feature
}

var clips = []struct{ name, line, text string }{
	{"samplenew_00006611", "samplenew_00006611 125 sad -10", "I can't believe it's over."},
	{"sample_00000023", "sample_00000023 35 angry -1.174107", "Get out, now!"},
	{"sample_00000100", "sample_00000100 60 worried -2", `She said "wait, please".`},
	{"sample_00000200", "sample_00000200 80 Happy 3.5", "Finally home."},
}

func newLayout(t *testing.T) *layout {
	t.Helper()
	dir := t.TempDir()
	l := &layout{dir: dir, ann: filepath.Join(dir, "train.txt"), csv: filepath.Join(dir, "transcription_en_all.csv")}
	var ann, csv strings.Builder
	csv.WriteString("name,chinese,sentence\n")
	for _, c := range clips {
		ann.WriteString(c.line + "\n")
		csv.WriteString(c.name + `,中文,"` + strings.ReplaceAll(c.text, `"`, `""`) + "\"\n")
	}
	write(t, l.ann, ann.String())
	write(t, l.csv, csv.String())
	for _, f := range []Feature{{"face_mae", "mae_340_UTT"}, {"video_mae", "maeV_399_UTT"}, {"hubert", "HL-UTT"}} {
		f.Dir = filepath.Join(dir, f.Dir)
		l.feats = append(l.feats, f)
		for i, c := range clips {
			writeNpy(t, filepath.Join(f.Dir, c.name+".npy"), npy.Float16, []int{8}, float32(i))
		}
	}
	return l
}

func write(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeNpy(t *testing.T, p string, dt npy.DType, shape []int, v float32) {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = v
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := npy.Write(f, &npy.Array{DType: dt, Shape: shape, Data: vals}); err != nil {
		t.Fatal(err)
	}
}

func (l *layout) options() Options {
	return Options{Annotations: l.ann, Transcripts: l.csv, Features: l.feats, Out: filepath.Join(l.dir, "manifest.jsonl")}
}

func TestImport(t *testing.T) {
	l := newLayout(t)
	reasons := filepath.Join(l.dir, "MERR_fine_grained.json")
	write(t, reasons, `{"sample_00000023": {"caption": "c", "smp_reason_caption": "He shouts and frowns."}}`)
	opt := l.options()
	opt.Reasons = reasons
	res, err := Import(opt)
	if err != nil {
		t.Fatal(err)
	}
	if res.Samples != 4 || res.ByLabel["worry"] != 1 || res.ByLabel["happy"] != 1 {
		t.Fatalf("result %+v", res)
	}
	samples, err := data.ReadManifest(opt.Out, data.ManifestOptions{Labels: DefaultLabels, Inputs: []string{"face_mae", "video_mae", "hubert"}})
	if err != nil {
		t.Fatal(err)
	}
	s := samples[2]
	if s.ID != "sample_00000100" || s.Label != "worry" || s.Subtitle != `She said "wait, please".` || s.Subset != data.SubsetGeneral ||
		s.Features["hubert"] != "HL-UTT/sample_00000100.npy" || s.Meta["valence"] != -2.0 || s.Meta["n_frames"] != 60.0 {
		t.Fatalf("sample %+v", s)
	}
	if samples[1].Reason != "He shouts and frowns." || samples[0].Reason != "" {
		t.Fatalf("reasons %q %q", samples[1].Reason, samples[0].Reason)
	}

	// The imported manifest validates against an Emotion-LLaMA-like spec.
	spec := data.Spec{
		Inputs: []data.Input{
			{Name: "face_mae", Modality: "visual", Dim: 8, Tokens: 1, Placeholder: "<FeatureHere>"},
			{Name: "video_mae", Modality: "visual", Dim: 8, Tokens: 1, Placeholder: "<FeatureHere>"},
			{Name: "hubert", Modality: "audio", Dim: 8, Tokens: 1, Placeholder: "<FeatureHere>"},
		},
		Prompt: data.Prompt{Template: "<s>[INST] <feature><FeatureHere></feature> The person in video says: {subtitle}. [/INST]", Answer: "{label}</s>"},
		Labels: DefaultLabels,
	}
	rep, err := data.Validate(opt.Out, spec, nil, data.ValidateOptions{})
	if err != nil || rep.Valid != 4 {
		t.Fatalf("validate: %v %v", err, &rep.Problems)
	}
}

func TestImportBadInput(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(t *testing.T, l *layout, o *Options)
		want    error
		mention []string
	}{
		{"unknown label", func(t *testing.T, l *layout, o *Options) {
			write(t, l.ann, clips[0].line+"\nsample_00000023 35 bored -1\n")
		}, data.ErrUnknownLabel, []string{"train.txt:2", `sample "sample_00000023"`, "bored"}},
		{"malformed annotation", func(t *testing.T, l *layout, o *Options) {
			write(t, l.ann, clips[0].line+"\nsample_00000023 angry\n")
		}, data.ErrMalformed, []string{"train.txt:2"}},
		{"bad frame count", func(t *testing.T, l *layout, o *Options) {
			write(t, l.ann, "sample_00000023 many angry -1\n")
		}, data.ErrMalformed, []string{"train.txt:1", "n_frames"}},
		{"duplicate clip", func(t *testing.T, l *layout, o *Options) {
			write(t, l.ann, clips[0].line+"\n"+clips[0].line+"\n")
		}, data.ErrDuplicateID, []string{"train.txt:2", "first on line 1"}},
		{"empty annotations", func(t *testing.T, l *layout, o *Options) { write(t, l.ann, "\n\n") }, data.ErrEmpty, []string{"train.txt"}},
		{"csv without sentence", func(t *testing.T, l *layout, o *Options) {
			write(t, l.csv, "name,english\nsample_00000023,hi\n")
		}, data.ErrMissingColumn, []string{"transcription_en_all.csv:1", "sentence", "english"}},
		{"csv without name", func(t *testing.T, l *layout, o *Options) {
			write(t, l.csv, "clip,sentence\nsample_00000023,hi\n")
		}, data.ErrMissingColumn, []string{"transcription_en_all.csv", `"name"`}},
		{"missing transcript", func(t *testing.T, l *layout, o *Options) {
			write(t, l.csv, "name,sentence\nsample_00000023,hi\n")
		}, data.ErrMissingField, []string{"train.txt:1", "samplenew_00006611", "transcript"}},
		{"missing feature file", func(t *testing.T, l *layout, o *Options) {
			os.Remove(filepath.Join(l.feats[2].Dir, clips[3].name+".npy"))
		}, data.ErrMissingFile, []string{"train.txt:4", clips[3].name, "HL-UTT"}},
		{"wrong dtype", func(t *testing.T, l *layout, o *Options) {
			write(t, filepath.Join(l.feats[0].Dir, clips[1].name+".npy"), "\x93NUMPY\x01\x00\x3c\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }         \n12345678")
		}, data.ErrDType, []string{"train.txt:2", "mae_340_UTT"}},
		{"inconsistent shape", func(t *testing.T, l *layout, o *Options) {
			writeNpy(t, filepath.Join(l.feats[1].Dir, clips[2].name+".npy"), npy.Float32, []int{9}, 0)
		}, data.ErrShape, []string{"train.txt:3", "maeV_399_UTT", "[9]"}},
		{"features outside root", func(t *testing.T, l *layout, o *Options) {
			o.Root = filepath.Join(l.dir, "HL-UTT")
		}, data.ErrEscapesRoot, []string{"mae_340_UTT"}},
		{"unknown subset", func(t *testing.T, l *layout, o *Options) { o.Subset = "conflict" }, data.ErrUnknownSubset, []string{"conflict"}},
		{"missing annotation file", func(t *testing.T, l *layout, o *Options) { o.Annotations = filepath.Join(l.dir, "nope.txt") }, data.ErrMissingFile, []string{"nope.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			opt := l.options()
			tc.mutate(t, l, &opt)
			_, err := Import(opt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("message %q lacks %q", err, m)
				}
			}
			if _, statErr := os.Stat(opt.Out); !os.IsNotExist(statErr) {
				t.Error("manifest written despite errors")
			}
		})
	}
}

func TestAllowMissingText(t *testing.T) {
	l := newLayout(t)
	write(t, l.csv, "name,sentence\n")
	opt := l.options()
	opt.AllowMissingText = true
	if res, err := Import(opt); err != nil || res.Samples != 4 {
		t.Fatalf("%v %+v", err, res)
	}
}

func TestParseFeature(t *testing.T) {
	if f, err := ParseFeature("hubert=/data/HL-UTT"); err != nil || f.Name != "hubert" || f.Dir != "/data/HL-UTT" {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []string{"hubert", "=dir", "name="} {
		if _, err := ParseFeature(bad); err == nil {
			t.Errorf("ParseFeature(%q) accepted", bad)
		}
	}
}
