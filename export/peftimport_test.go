package export

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mose-llm/mose/internal/inputerr"
	"github.com/mose-llm/mose/internal/safetensors"
	"github.com/mose-llm/mose/internal/testfix"
	"github.com/mose-llm/mose/internal/torch"
	"github.com/mose-llm/mose/model"
	"github.com/mose-llm/mose/stack"
)

// peftImportSets are the committed fixture sets, one per PEFT release that
// wrote them (scripts/fixtures/make_peft_import_fixtures.py).
var peftImportSets = []struct{ name, dir string }{
	{"0.13", "testdata/peft-import"},
	{"0.21", "testdata/peft-import-0.21"},
}

// peftImportDir is the directory of the set called name.
func peftImportDir(t *testing.T, name string) string {
	t.Helper()
	for _, s := range peftImportSets {
		if s.name == name {
			return s.dir
		}
	}
	t.Fatalf("no fixture set %q", name)
	return ""
}

func addTensor(name string, n int) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		return append(ts, safetensors.Tensor{Name: name, DType: safetensors.F32, Shape: []int64{int64(n)}, Data: make([]byte, 4*n)})
	}
}

func dropTensor(name string) func([]safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		var out []safetensors.Tensor
		for _, t := range ts {
			if t.Name != name {
				out = append(out, t)
			}
		}
		return out
	}
}

// peftVariants reads a fixture set's variants.json: variant -> base model dir name.
func peftVariants(t *testing.T, setDir string) map[string]string {
	t.Helper()
	var variants map[string]struct {
		Base string `json:"base"`
	}
	b, err := os.ReadFile(filepath.Join(setDir, "variants.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &variants); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range variants {
		out[k] = v.Base
	}
	return out
}

// peftImportAdapter writes the case's adapter dir from the fixture set in
// setDir and returns it with its base model dir.
func peftImportAdapter(t *testing.T, setDir string, c peftImportCase) (base, dir string) {
	t.Helper()
	vbase, ok := peftVariants(t, setDir)[c.variant]
	if !ok {
		t.Fatalf("no variant %q in %s", c.variant, setDir)
	}
	src := filepath.Join(setDir, c.variant)
	dir = filepath.Join(t.TempDir(), "adapter")
	os.MkdirAll(dir, 0o755)
	var cfg map[string]json.RawMessage
	b, _ := os.ReadFile(filepath.Join(src, stack.PEFTConfigFile))
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	for k, val := range c.set {
		if val == "" {
			delete(cfg, k)
		} else {
			cfg[k] = json.RawMessage(val)
		}
	}
	b, _ = json.MarshalIndent(cfg, "", " ")
	os.WriteFile(filepath.Join(dir, stack.PEFTConfigFile), b, 0o644)
	f, err := safetensors.Open(filepath.Join(src, stack.PEFTWeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ts []safetensors.Tensor
	for _, info := range f.Tensors() {
		data, _ := f.Read(info.Name)
		ts = append(ts, safetensors.Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: data})
	}
	if c.tensors != nil {
		ts = c.tensors(ts)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, stack.PEFTWeightsFile), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	base, _ = filepath.Abs(filepath.Join(setDir, vbase))
	return base, dir
}

func expectedTensor(t *testing.T, setDir, key string) ([]float32, []int64) {
	t.Helper()
	f, err := safetensors.Open(filepath.Join(setDir, "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := f.Read(key)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := f.Info(key)
	if info.DType == safetensors.I64 {
		ids, _ := safetensors.BytesToInt64s(raw)
		out := make([]float32, len(ids))
		for i, id := range ids {
			out[i] = float32(id)
		}
		return out, info.Shape
	}
	v, _ := safetensors.BytesToFloat32s(raw)
	return v, info.Shape
}

// Every LoraConfig field of PEFT 0.13.2 to 0.21.2, on the fixture set of
// each release: supported ones give that PEFT's logits (1e-4), accepted ones
// too, refused ones are bad input naming the field.
func TestPEFTImportFields(t *testing.T) {
	for _, set := range peftImportSets {
		t.Run(set.name, func(t *testing.T) {
			variants := peftVariants(t, set.dir)
			covered := map[string]bool{}
			for _, c := range peftImportCases {
				if _, ok := variants[c.variant]; !ok || (c.only != "" && c.only != set.name) {
					continue
				}
				if c.golden == "logits_"+c.variant && c.set == nil && c.tensors == nil && c.goldenSet == "" {
					covered[c.variant] = true
				}
				t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) { runPEFTImportCase(t, set.dir, c) })
			}
			for v := range variants {
				if !covered[v] {
					t.Errorf("variant %s of %s: no case compares it unedited with PEFT's logits", v, set.dir)
				}
			}
		})
	}
}

// runPEFTImportCase opens the case's adapter on the set in setDir and checks
// the logits or the refusal.
func runPEFTImportCase(t *testing.T, setDir string, c peftImportCase) {
	idsF, shape := expectedTensor(t, setDir, "input_ids")
	ids := make([]int64, len(idsF))
	for i, v := range idsF {
		ids[i] = int64(v)
	}
	base, dir := peftImportAdapter(t, setDir, c)
	var got []float32
	err := torch.Run(func() error {
		m, closeFn, err := OpenPEFT(base, dir, model.Options{})
		if err != nil {
			return err
		}
		defer closeFn()
		s := torch.NewScope()
		defer s.Close()
		in := &model.Inputs{IDs: s.FromInt64(ids, shape[0], shape[1])}
		return torch.NoGrad(func() error {
			got, err = m.Logits(s, m.Forward(s, in, false), nil).Float32s()
			return err
		})
	})
	if c.refuse != "" {
		if inputerr.Classify(err) != inputerr.Input || !strings.Contains(err.Error(), c.refuse) {
			t.Fatalf("want bad input naming %q, got %v", c.refuse, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	goldenDir := setDir
	if c.goldenSet != "" {
		goldenDir = peftImportDir(t, c.goldenSet)
		if other, _ := expectedTensor(t, goldenDir, "input_ids"); !slices.Equal(other, idsF) {
			t.Fatalf("%s and %s have different input_ids", setDir, goldenDir)
		}
	}
	want, _ := expectedTensor(t, goldenDir, c.golden)
	if len(got) != len(want) {
		t.Fatalf("%d logits, PEFT has %d", len(got), len(want))
	}
	var worst float64
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	t.Logf("max |mose - PEFT| = %.3g", worst)
	if worst > 1e-4 {
		t.Errorf("max |mose - PEFT| = %.3g (> 1e-4)", worst)
	}
}

// mose's own PEFT export loads back through the importer with PEFT's logits.
func TestPEFTImportMoseExport(t *testing.T) {
	_, ck := peftFixtureCheckpoint(t)
	out := filepath.Join(t.TempDir(), "peft")
	if _, err := Export(context.Background(), Options{Checkpoint: ck, Format: FormatPEFT, Out: out, Log: testfix.QuietLog()}); err != nil {
		t.Fatal(err)
	}
	exp, _ := safetensors.Open("../experts/testdata/peft-lora/expected.safetensors")
	defer exp.Close()
	raw, _ := exp.Read("input_ids")
	ids, _ := safetensors.BytesToInt64s(raw)
	raw, _ = exp.Read("logits_lora")
	want, _ := safetensors.BytesToFloat32s(raw)
	base, _ := filepath.Abs("../experts/testdata/peft-lora/base")
	err := torch.Run(func() error {
		m, closeFn, err := OpenPEFT(base, out, model.Options{})
		if err != nil {
			return err
		}
		defer closeFn()
		s := torch.NewScope()
		defer s.Close()
		got, err := m.Logits(s, m.Forward(s, &model.Inputs{IDs: s.FromInt64(ids, 2, int64(len(ids)/2))}, false), nil).Float32s()
		if err != nil {
			return err
		}
		var worst float64
		for i := range want {
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
		}
		if worst > 1e-4 {
			t.Errorf("mose's export through OpenPEFT: logits differ from PEFT's by %.3g", worst)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nanTensor sets the first element of a float32 tensor to NaN.
func nanTensor(name string) func(ts []safetensors.Tensor) []safetensors.Tensor {
	return func(ts []safetensors.Tensor) []safetensors.Tensor {
		for i := range ts {
			if ts[i].Name == name && ts[i].DType == safetensors.F32 {
				data := append([]byte(nil), ts[i].Data...)
				binary.LittleEndian.PutUint32(data, math.Float32bits(float32(math.NaN())))
				ts[i].Data = data
			}
		}
		return ts
	}
}
